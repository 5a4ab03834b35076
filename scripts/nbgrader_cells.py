"""Give the book's notebooks the cell metadata nbgrader needs; safe to run again and again.

Usage: python scripts/nbgrader_cells.py [NOTEBOOK_OR_DIR ...]   (default: book)

For each exercise (a markdown cell with an ``{exercise}`` directive and a ``:label:``):

- the code cell tagged ``solution`` after it becomes an nbgrader *answer* cell
  (``solution: true, grade: false, locked: false``, grade id ``<label>-answer``);
- each following code cell that calls ``mlh.exercises.check_*`` becomes an *autograded
  test* cell (``grade: true, locked: true``, grade id ``<label>-check``) worth the points
  of the exercise's difficulty: easy 1, medium 2, hard 3 (another or no difficulty: 1).

Every cell gets a stable id (nbformat 4.5): the exercise's cells are named after its label
(``<label>``, ``<label>-solution-start``, ``<label>-answer``, ``<label>-solution-end``,
``<label>-check``), other cells get ``cell-`` and a hash of their source; an id already there
is kept. The ``{solution-start}``/``{solution-end}`` markdown cells need no metadata: they
hold no solution text, so ``nbgrader generate_assignment`` (default settings) leaves them
as they are. Running the script twice changes nothing the second time.

An exercise whose directive has the option ``:class: written`` also asks for a written
answer (an explanation, a comparison, a guess). :func:`add_written_answers`, which
``scripts/make_assignments.py`` applies to the nbgrader sources and student copies (never
to the book's notebooks), puts after its last cell a Markdown *manually graded answer*
cell (``solution: true, grade: true``, grade id ``<label>-written``) worth
``WRITTEN_POINTS``, holding nbgrader's text stub ``YOUR ANSWER HERE``, with a plain Markdown
cell before it (``WRITTEN_LEAD``) that says what it is for.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import nbformat

SCHEMA_VERSION = 3
POINTS = {"easy": 1, "medium": 2, "hard": 3}
EXERCISE = re.compile(r"^(`{3,}|:{3,})\{exercise\}", re.M)
LABEL = re.compile(r"^:label:\s*(\S+)\s*$", re.M)
DIFFICULTY = re.compile(r"\((easy|medium|hard)\b", re.I)
GATE = re.compile(r"\{solution-(start|end)\}")
CHECK = re.compile(r"\bmlh\.exercises\.check_\w+\(")
VALID_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
WRITTEN = re.compile(r"^:class:.*\bwritten\b", re.M)
WRITTEN_POINTS = 1
TEXT_STUB = "YOUR ANSWER HERE"  # nbgrader's ClearSolutions.text_stub
WRITTEN_LEAD = (
    f"**Your written answer** to the exercise above, in the next cell (graded by hand, "
    f"{WRITTEN_POINTS} point):"
)


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def answer_metadata(grade_id: str) -> dict[str, Any]:
    """nbgrader metadata of an answer cell (the student writes code here)."""
    return {
        "grade": False,
        "grade_id": grade_id,
        "locked": False,
        "schema_version": SCHEMA_VERSION,
        "solution": True,
        "task": False,
    }


def graded_metadata(grade_id: str, points: int) -> dict[str, Any]:
    """nbgrader metadata of an autograded test cell worth ``points``."""
    return {
        "grade": True,
        "grade_id": grade_id,
        "locked": True,
        "points": points,
        "schema_version": SCHEMA_VERSION,
        "solution": False,
        "task": False,
    }


def written_metadata(grade_id: str, points: int = WRITTEN_POINTS) -> dict[str, Any]:
    """nbgrader metadata of a manually graded answer cell (the student writes prose)."""
    return {
        "grade": True,
        "grade_id": grade_id,
        "locked": False,
        "points": points,
        "schema_version": SCHEMA_VERSION,
        "solution": True,
        "task": False,
    }


def _unique(base: str, taken: set[str]) -> str:
    name, n = base[:60], 2
    while name in taken:
        name, n = f"{base[:56]}-{n}", n + 1
    taken.add(name)
    return name


def _set_id(cell: Any, wanted: str, taken: set[str]) -> None:
    current = cell.get("id")
    if isinstance(current, str) and VALID_ID.match(current):
        return
    cell["id"] = _unique(wanted, taken)


def _exercise_roles(cells: list[Any]) -> list[tuple[str, str, int] | None]:
    """For each cell: (role, exercise label, points) when it belongs to an exercise."""
    roles: list[tuple[str, str, int] | None] = []
    label, points = None, 1
    for cell in cells:
        source = cell.source
        role = None
        if cell.cell_type == "markdown" and EXERCISE.search(source):
            found = LABEL.search(source)
            label = found.group(1) if found else None
            difficulty = DIFFICULTY.search(source)
            points = POINTS[difficulty.group(1).lower()] if difficulty else 1
            role = "prompt" if label else None
        elif label and cell.cell_type == "markdown" and GATE.search(source):
            role = f"solution-{GATE.search(source).group(1)}"  # type: ignore[union-attr]
        elif label and cell.cell_type == "code" and "solution" in _tags(cell):
            role = "answer"
        elif label and cell.cell_type == "code" and CHECK.search(source):
            role = "check"
        roles.append((role, label, points) if role and label else None)
    return roles


def process(nb: Any, stem: str = "") -> dict[str, int]:
    """Add ids and nbgrader metadata to ``nb`` in place; return the points per exercise."""
    cells = nb.cells
    taken = {c["id"] for c in cells if isinstance(c.get("id"), str) and VALID_ID.match(c["id"])}
    grade_ids: set[str] = set()
    totals: dict[str, int] = {}
    for cell, role in zip(cells, _exercise_roles(cells)):
        if role is None:
            digest = hashlib.sha1(cell.source.encode()).hexdigest()[:10]
            _set_id(cell, f"cell-{digest}", taken)
            continue
        kind, label, points = role
        suffix = "" if kind == "prompt" else f"-{kind}"
        _set_id(cell, f"{label}{suffix}", taken)
        if kind == "answer":
            grade_id = _unique(f"{label}-answer", grade_ids)
            cell.metadata["nbgrader"] = answer_metadata(grade_id)
        elif kind == "check":
            grade_id = _unique(f"{label}-check", grade_ids)
            cell.metadata["nbgrader"] = graded_metadata(grade_id, points)
            totals[label] = totals.get(label, 0) + points
    nb.nbformat, nb.nbformat_minor = 4, max(5, int(nb.get("nbformat_minor", 5)))
    return totals


def written_labels(cells: list[Any]) -> list[str]:
    """The labels of the exercises whose directive has ``:class: written``, in order."""
    labels = []
    for cell in cells:
        if cell.cell_type == "markdown" and EXERCISE.search(cell.source):
            found = LABEL.search(cell.source)
            if found and WRITTEN.search(cell.source):
                labels.append(found.group(1))
    return labels


def add_written_answers(nb: Any) -> list[str]:
    """After the last cell of each written exercise, a manually graded Markdown answer cell.

    Run after :func:`process`. Safe to run again (a cell already there is kept); returns the
    labels that got an answer cell now.
    """
    cells, added = nb.cells, []
    ids = {c.get("id") for c in cells}
    last: dict[str, int] = {}
    for index, role in enumerate(_exercise_roles(cells)):
        if role is not None:
            last[role[1]] = index
    for label in written_labels(cells):
        cell_id = f"{label}-written"
        if label not in last or cell_id in ids:
            continue
        lead = nbformat.v4.new_markdown_cell(WRITTEN_LEAD, id=f"{cell_id}-lead")
        cell = nbformat.v4.new_markdown_cell(TEXT_STUB, id=cell_id)
        cell.metadata["nbgrader"] = written_metadata(cell_id)
        position = last[label] + 1
        cells[position:position] = [lead, cell]
        last = {k: v + 2 * (v >= position) for k, v in last.items()}
        added.append(label)
    return added


def process_file(path: Path) -> dict[str, int]:
    """Process one notebook file in place; return the points per exercise."""
    text = path.read_text()
    nb = nbformat.reads(text, as_version=4)
    totals = process(nb, path.stem)
    nbformat.validate(nb)
    new = nbformat.writes(nb) + "\n"
    if new != text:
        path.write_text(new)
    return totals


def main(argv: list[str]) -> int:
    targets = [Path(a) for a in argv[1:]] or [Path("book")]
    paths = [p for t in targets for p in (sorted(t.glob("*.ipynb")) if t.is_dir() else [t])]
    for path in paths:
        totals = process_file(path)
        print(f"{path}: {len(totals)} graded exercise(s), {sum(totals.values())} point(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
