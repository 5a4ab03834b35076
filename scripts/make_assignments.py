"""Write student notebooks: every solution region replaced by a stub, outputs cleared.

Usage: python scripts/make_assignments.py [SOURCE_DIR] [OUTPUT_DIR]
(defaults: book and _build/assignments; `make assignments` runs it).

In each code cell tagged ``solution``, the lines from ``### BEGIN SOLUTION`` to
``### END SOLUTION`` (nbgrader's markers) become one ``raise NotImplementedError``
at the same indentation, so the scaffolding around them (a function signature, a
docstring) stays. The markdown cells that open and close the book's hidden
solution blocks are dropped; checks and everything else are kept.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: replace this line with your solution")'
GATE = re.compile(r"\{solution-(start|end)\}")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def strip_solutions(source: str) -> str:
    """Replace each marked region of ``source`` with a stub at the marker's indentation."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError("nested `### BEGIN SOLUTION` markers")
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + STUB)
        elif stripped == END:
            if not inside:
                raise ValueError("`### END SOLUTION` without a matching BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("`### BEGIN SOLUTION` without a matching END")
    return "\n".join(out)


def student_notebook(notebook: dict) -> tuple[dict, int]:
    """The student version of a notebook and the number of solution cells stubbed."""
    cells, stubbed = [], 0
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown" and GATE.search(_source(cell)):
            continue
        cell = dict(cell)
        if cell["cell_type"] == "code":
            if "solution" in cell.get("metadata", {}).get("tags", []):
                source = _source(cell)
                if BEGIN not in source:
                    raise ValueError("a cell tagged `solution` has no `### BEGIN SOLUTION` marker")
                cell["source"] = strip_solutions(source)
                stubbed += 1
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    return {**notebook, "cells": cells}, stubbed


def make_assignments(source_dir: Path, output_dir: Path) -> dict[str, int]:
    """Write a student version of every notebook in ``source_dir``; return the stub counts."""
    output_dir.mkdir(parents=True, exist_ok=True)
    counts = {}
    for path in sorted(source_dir.glob("*.ipynb")):
        notebook, stubbed = student_notebook(json.loads(path.read_text()))
        (output_dir / path.name).write_text(
            json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        )
        counts[path.name] = stubbed
    return counts


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else Path("book")
    output = Path(argv[2]) if len(argv) > 2 else Path("_build/assignments")
    counts = make_assignments(source, output)
    for name, stubbed in counts.items():
        print(f"{name}: {stubbed} exercise stub(s)")
    print(f"student notebooks written to {output.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
