"""`book/teaching.md` lists every exercise of the notebooks, with the points nbgrader awards."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
TEACHING = ROOT / "book" / "teaching.md"
HEADER = "| Chapter | Exercise | Title | Kind | Level | Points | Minutes | The check verifies |"


def _load(name):
    sys.path.insert(0, str(ROOT / "scripts"))
    return load_script(name)  # registered: its dataclass looks its module up there


exercise_table = _load("exercise_table")
EXERCISES = exercise_table.exercises(ROOT / "book")


def _table_rows():
    """The exercise table of teaching.md: {(chapter, number): cells}."""
    lines = TEACHING.read_text().splitlines()
    start = lines.index(HEADER) + 2
    rows = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 8, line
        key = (cells[0], cells[1])
        assert key not in rows, f"exercise {key} listed twice"
        rows[key] = cells
    return rows


ROWS = _table_rows()


def test_the_notebooks_have_the_exercises_the_table_expects():
    # Every {exercise} directive is found, in every notebook, with a number and a label.
    text = "\n".join(p.read_text() for p in sorted((ROOT / "book").glob("*.ipynb")))
    assert len(EXERCISES) == len(re.findall(r"\{exercise\}", text)) >= 42
    assert len({e.label for e in EXERCISES}) == len(EXERCISES)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: f"{e.chapter}:{e.number}")
def test_every_exercise_is_in_the_table_with_its_points(exercise):
    row = ROWS.get((exercise.chapter, exercise.number))
    assert row, f"exercise {exercise.number} ({exercise.title}) is missing from teaching.md"
    _, _, title, kind, level, points, minutes, verifies = row
    assert title == exercise.title, (exercise.number, title)
    assert points == exercise.points_text(), (
        f"exercise {exercise.number}: teaching.md says {points} point(s), nbgrader awards "
        f"{exercise.points_text()}"
    )
    assert (kind, level, minutes) == (exercise.kind, exercise.level, str(exercise.minutes))
    assert len(verifies.split()) >= 4, f"exercise {exercise.number}: what does its check verify?"


def test_the_table_lists_no_exercise_the_notebooks_lack():
    known = {(e.chapter, e.number) for e in EXERCISES}
    assert set(ROWS) == known, set(ROWS) ^ known


def test_points_are_those_of_the_nbgrader_sources():
    # Chapter 8: three autograded checks (1 + 2 + 2) and two written answers graded by hand.
    chapter8 = [e for e in EXERCISES if e.chapter == "8"]
    assert sum(e.points for e in chapter8) == 5
    assert sum(e.written_points for e in chapter8) == 2
    assert all(e.points in (1, 2, 3) for e in EXERCISES)
