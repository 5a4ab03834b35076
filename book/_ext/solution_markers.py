"""Sphinx extension: the book shows solutions without nbgrader's marker lines.

A solution cell keeps its body between ``### BEGIN SOLUTION`` and ``### END SOLUTION``,
so that nbgrader and scripts/make_assignments.py can cut it out of the student copies.
On the page those two lines are noise: this drops them from every rendered code block,
after the notebooks have run (the notebooks themselves are not changed).
"""

from __future__ import annotations

from typing import Any

from docutils import nodes

MARKERS = frozenset({"### BEGIN SOLUTION", "### END SOLUTION"})


def strip_markers(text: str) -> str:
    """``text`` without its solution marker lines (any indentation)."""
    return "\n".join(line for line in text.split("\n") if line.strip() not in MARKERS)


def strip_marker_lines(app: Any, doctree: nodes.document) -> None:
    """Remove the marker lines from every literal block of ``doctree`` that has one."""
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if not any(marker in text for marker in MARKERS):
            continue
        stripped = strip_markers(text)
        block.children = []
        block += nodes.Text(stripped)
        block.rawsource = stripped


def setup(app: Any) -> dict[str, Any]:
    app.connect("doctree-read", strip_marker_lines)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
