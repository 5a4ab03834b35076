"""The book's exercises, read from the notebooks: the rows of `book/teaching.md`'s table.

Usage: python scripts/exercise_table.py [BOOK_DIR]   (default: book)

Prints one Markdown table row per ``{exercise}`` directive, in the book's order: the chapter,
the number as the book and the student copies give it ("9.1"; the unnumbered appendix counts
from 1), the title, the kind, the level, the points nbgrader awards (those of the exercise's
autograded check cells, plus ``WRITTEN_POINTS`` graded by hand for an exercise with
``:class: written``, as in the nbgrader sources of ``make_assignments.py
--nbgrader-source``) and the minutes. The last column, what the check verifies, is left
empty: it is written by hand from the checks in ``multiloss_helpers/exercises/``.
``tests/house/test_teaching.py`` compares `teaching.md` with :func:`exercises`.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_assignments
import nbgrader_cells

TITLE = re.compile(
    r"^\*\*(?P<title>.+?)\*\*\s*\((?P<level>easy|medium|hard),\s+about\s+"
    r"(?P<minutes>\d+)\s+minutes\)",
    re.M | re.S,
)
APPENDIX = {"appendix_pitfalls": "Pitfalls"}


@dataclass(frozen=True)
class Exercise:
    """One exercise of the book, as nbgrader grades it."""

    chapter: str
    number: str
    label: str
    title: str
    kind: str
    level: str
    points: int
    written_points: int
    minutes: int

    def points_text(self) -> str:
        """The points column: ``2``, or ``2 + 1 by hand`` for a written answer."""
        extra = f" + {self.written_points} by hand" if self.written_points else ""
        return f"{self.points}{extra}"


def _points(notebook: dict) -> dict[str, int]:
    """Points per grade id of the nbgrader source of ``notebook``."""
    source = make_assignments.nbgrader_source(notebook)
    points = {}
    for cell in source["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            points[meta["grade_id"]] = int(meta["points"])
    return points


def chapter_exercises(path: Path) -> list[Exercise]:
    """The exercises of one notebook, in order."""
    notebook = json.loads(path.read_text())
    chapter = make_assignments.chapter_number(path.stem)
    points = _points(notebook)
    rows = []
    for cell in notebook["cells"]:
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] != "markdown" or not nbgrader_cells.EXERCISE.search(text):
            continue
        label = nbgrader_cells.LABEL.search(text)
        heading = TITLE.search(text)
        if not label or not heading:
            raise ValueError(f"{path.name}: an exercise without a label or a title line")
        name = label.group(1)
        title = " ".join(heading["title"].split())
        written = bool(nbgrader_cells.WRITTEN.search(text))
        kind = "investigation" if title.startswith("Investigation:") else "function"
        auto = sum(p for gid, p in points.items() if re.fullmatch(rf"{name}-check(-\d+)?", gid))
        number = f"{chapter}.{len(rows) + 1}" if chapter else str(len(rows) + 1)
        rows.append(
            Exercise(
                chapter=chapter or APPENDIX.get(path.stem, path.stem),
                number=number,
                label=name,
                title=title,
                kind=kind + (" + written" if written else ""),
                level=heading["level"],
                points=auto,
                written_points=points.get(f"{name}-written", 0),
                minutes=int(heading["minutes"]),
            )
        )
    return rows


def exercises(book: Path) -> list[Exercise]:
    """Every exercise of the book's notebooks, chapter by chapter."""
    return [row for path in sorted(book.glob("*.ipynb")) for row in chapter_exercises(path)]


def main(argv: list[str]) -> int:
    book = Path(argv[1]) if len(argv) > 1 else Path("book")
    print("| Chapter | Exercise | Title | Kind | Level | Points | Minutes | The check verifies |")
    print("|---|---|---|---|---|---|---|---|")
    for row in exercises(book):
        print(
            f"| {row.chapter} | {row.number} | {row.title} | {row.kind} | {row.level} | "
            f"{row.points_text()} | {row.minutes} |  |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
