"""nbgrader end to end: generate, a simulated student, autograde, scores (`make test-grading`).

The real nbgrader 0.9.6 pipeline runs in a temporary course directory on two chapters. Their
notebooks are prepared as an instructor would, with scripts/make_assignments.py
--nbgrader-source (which applies scripts/nbgrader_cells.py), so this works before the
metadata is written into book/. A student answers the first exercise of each chapter with
the book's solution and leaves the second untouched: autograde must give exactly the first
exercise's points. Another student answers the first exercise with a function that returns
None and replaces every checker (`mlh.exercises.check_* = lambda *a, **k: True`, the harness's
`run_check` too) in the answer cell: the hidden tests that --nbgrader-source adds to each
check cell run the checks from a fresh copy of the package, so that submission scores 0.
The release must equal the student copies of `make assignments`, cell for cell, and a book
notebook with only scripts/nbgrader_cells.py applied must go through `nbgrader
generate_assignment` with default settings without leaking a solution line.

The chapters are cut to their set-up cells and their exercise cells (the check cells need
nothing else), so the test takes seconds rather than minutes on a busy machine;
MLH_GRADING_FULL=1 grades the whole chapters. It runs only with MLH_TEST_GRADING=1 (set by
`make test-grading`, which installs requirements-grading.txt).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.scripts import load_script

if os.environ.get("MLH_TEST_GRADING") != "1":
    pytest.skip("nbgrader pipeline: run `make test-grading`", allow_module_level=True)
pytest.importorskip("nbgrader")

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = ("01_builtin_losses", "03_summing_losses")


def _load(name):
    return load_script(name)


make_assignments = _load("make_assignments")
nbgrader_cells = _load("nbgrader_cells")


def _source(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _cut(notebook):
    """The set-up cells (first two code cells), the markdown, and every exercise cell."""
    if os.environ.get("MLH_GRADING_FULL") == "1":
        return notebook
    import nbformat

    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    roles = nbgrader_cells._exercise_roles(nb.cells)
    code_seen, keep = 0, []
    for cell, role in zip(notebook["cells"], roles):
        if cell["cell_type"] == "code":
            code_seen += 1
        if cell["cell_type"] == "markdown" or code_seen <= 2 or role is not None:
            keep.append(cell)
    return {**notebook, "cells": keep}


def _run(args, cwd):
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _solution_lines(cell):
    lines, inside = [], False
    for line in _source(cell).splitlines():
        if line.strip() == make_assignments.BEGIN:
            inside = True
        elif line.strip() == make_assignments.END:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _assert_no_solution(released, original):
    """No line of a solution region is left in the released answer cell of the same id."""
    answers = {
        _nbgrader(c)["grade_id"]: c for c in original["cells"] if _nbgrader(c).get("solution")
    }
    assert len(answers) >= 2
    for cell in released["cells"]:
        grade_id = _nbgrader(cell).get("grade_id")
        if grade_id in answers:
            text = {line.strip() for line in _source(cell).splitlines()}
            leaked = [line for line in _solution_lines(answers.pop(grade_id)) if line in text]
            assert not leaked, leaked
    assert not answers, f"answer cells missing from the release: {sorted(answers)}"
    assert make_assignments.BEGIN not in json.dumps(released)


# An answer cell that replaces every checker, then answers with a function returning None.
TAMPER = """import multiloss_helpers as mlh
import multiloss_helpers.exercises._harness as harness

for name in dir(mlh.exercises):
    if name.startswith("check_"):
        setattr(mlh.exercises, name, lambda *args, **kwargs: True)
harness.run_check = harness.verdict = lambda *args, **kwargs: True


def {name}(*args, **kwargs):
    return None"""


def _submit(released, source, answer):
    """``released`` with the first answer cell's source replaced by ``answer(cell)``."""
    first = next(c for c in source["cells"] if _nbgrader(c).get("solution"))
    submission = json.loads(json.dumps(released))
    for cell in submission["cells"]:
        if _nbgrader(cell).get("grade_id") == _nbgrader(first)["grade_id"]:
            cell["source"] = answer(first)
    return submission


def _right(cell):
    return "\n".join(line for line in _source(cell).splitlines() if "SOLUTION" not in line)


def _tampered(cell):
    return TAMPER.format(name=re.search(r"^def (\w+)", _source(cell), re.M).group(1))


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course directory with assignment ps1 (two chapters) generated and autograded."""
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "ps1").mkdir(parents=True)
    (root / "nbgrader_config.py").write_text((ROOT / "scripts" / "nbgrader_config.py").read_text())
    sources, points = {}, {}
    for name in CHAPTERS:
        book = _cut(json.loads((ROOT / "book" / f"{name}.ipynb").read_text()))
        source = make_assignments.nbgrader_source(book, make_assignments.chapter_number(name))
        (root / "source" / "ps1" / f"{name}.ipynb").write_text(json.dumps(source, indent=1))
        sources[name] = (book, source)
        points[name] = [
            _nbgrader(c)["points"] for c in source["cells"] if _nbgrader(c).get("grade")
        ]
    _run(["generate_assignment", "ps1"], root)
    for student, answer in (("alice", _right), ("mallory", _tampered)):
        submitted = root / "submitted" / student / "ps1"
        submitted.mkdir(parents=True)
        for name, (_, source) in sources.items():
            released = json.loads((root / "release" / "ps1" / f"{name}.ipynb").read_text())
            submission = _submit(released, source, answer)
            (submitted / f"{name}.ipynb").write_text(json.dumps(submission, indent=1))
    graded = _run(["autograde", "ps1", "--ExecutePreprocessor.timeout=600"], root)
    # scripts/nbgrader_config.py keeps nbgrader's own noise out of the instructor's log.
    log = graded.stdout + graded.stderr
    assert "SAWarning" not in log and "without encryption" not in log, log[-3000:]
    return root, sources, points


@pytest.mark.parametrize("name", CHAPTERS)
def test_release_equals_the_student_copy_and_has_no_solution(course, name):
    root, sources, _ = course
    book, source = sources[name]
    released = json.loads((root / "release" / "ps1" / f"{name}.ipynb").read_text())
    student, stubbed = make_assignments.student_notebook(
        book, make_assignments.chapter_number(name)
    )
    assert stubbed >= 2
    assert [(c["cell_type"], _source(c)) for c in released["cells"]] == [
        (c["cell_type"], _source(c)) for c in student["cells"]
    ]
    _assert_no_solution(released, source)
    text = json.dumps(released)
    assert "{solution-start}" not in text and "{exercise}" not in text


@pytest.mark.parametrize("name", CHAPTERS)
def test_one_right_answer_and_one_stub_score_the_first_exercise(course, name):
    from nbgrader.api import Gradebook

    root, _, points = course
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(name, "ps1", "alice")
        score, max_score = notebook.score, notebook.max_score
    assert len(points[name]) >= 2
    assert max_score == sum(points[name])
    assert score == points[name][0], (score, max_score)


@pytest.mark.parametrize("name", CHAPTERS)
def test_replacing_the_checkers_in_an_answer_cell_scores_zero(course, name):
    from nbgrader.api import Gradebook

    root, sources, points = course
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(name, "ps1", "mallory")
        score, max_score = notebook.score, notebook.max_score
    assert max_score == sum(points[name])
    assert score == 0, (score, max_score)
    # The hidden tests are in the locked cells nbgrader stored, not in the release.
    _, source = sources[name]
    checks = [c for c in source["cells"] if _nbgrader(c).get("grade")]
    assert checks and all(make_assignments.HIDDEN_BEGIN in _source(c) for c in checks)
    released = (root / "release" / "ps1" / f"{name}.ipynb").read_text()
    assert make_assignments.HIDDEN_BEGIN not in released and "_mlh_fresh" not in released


def test_book_notebooks_with_metadata_generate_with_default_settings(tmp_path):
    """The book's own notebooks (gates kept) once scripts/nbgrader_cells.py has run."""
    (tmp_path / "source" / "raw").mkdir(parents=True)
    name = CHAPTERS[0]
    target = tmp_path / "source" / "raw" / f"{name}.ipynb"
    target.write_text((ROOT / "book" / f"{name}.ipynb").read_text())
    nbgrader_cells.process_file(target)
    _run(["generate_assignment", "raw"], tmp_path)
    released = json.loads((tmp_path / "release" / "raw" / f"{name}.ipynb").read_text())
    _assert_no_solution(released, json.loads(target.read_text()))
    assert make_assignments.BEGIN not in json.dumps(released)


def test_written_answer_cells_are_released_for_manual_grading(tmp_path):
    """Chapter 8's two written exercises: a markdown answer cell each, graded by hand."""
    name = "08_class_imbalance"
    (tmp_path / "source" / "ps2").mkdir(parents=True)
    book = _cut(json.loads((ROOT / "book" / f"{name}.ipynb").read_text()))
    source = make_assignments.nbgrader_source(book, make_assignments.chapter_number(name))
    (tmp_path / "source" / "ps2" / f"{name}.ipynb").write_text(json.dumps(source, indent=1))
    _run(["generate_assignment", "ps2"], tmp_path)
    released = json.loads((tmp_path / "release" / "ps2" / f"{name}.ipynb").read_text())
    student, _ = make_assignments.student_notebook(book, make_assignments.chapter_number(name))
    assert [(c["cell_type"], _source(c)) for c in released["cells"]] == [
        (c["cell_type"], _source(c)) for c in student["cells"]
    ]
    written = [
        c for c in released["cells"] if _nbgrader(c).get("grade_id", "").endswith("-written")
    ]
    assert [_nbgrader(c)["grade_id"] for c in written] == [
        "ex-08-weights-written",
        "ex-08-investigate-written",
    ]
    assert all(c["cell_type"] == "markdown" and _nbgrader(c)["solution"] for c in written)
    assert all(_source(c) == nbgrader_cells.TEXT_STUB for c in written)
