"""`make assignments`: student notebooks contain no solution and stop at the first stub."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbclient
import nbformat
import pytest
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    return load_script(name)


make_assignments = _load("make_assignments")
nbgrader_cells = _load("nbgrader_cells")

NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _source(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _marked_lines(source):
    """The non-blank lines between the solution markers of one cell."""
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == make_assignments.BEGIN:
            inside = True
        elif line.strip() == make_assignments.END:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def _solution_cells(cells):
    return [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("assignments")
    counts = make_assignments.make_assignments(ROOT / "book", out)
    assert counts and all(n >= 2 for n in counts.values()), counts
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_chapter_has_exercises_checks_and_hidden_solutions(path):
    cells = _cells(path)
    text = "\n".join(_source(c) for c in cells)
    assert len(re.findall(r"```\{exercise\}", text)) >= 2
    assert text.count("{solution-start}") == text.count("{solution-end}") >= 2
    solution_cells = _solution_cells(cells)
    assert len(solution_cells) >= 2
    for cell in solution_cells:
        assert make_assignments.BEGIN in _source(cell) and make_assignments.END in _source(cell)
    assert len(re.findall(r"mlh\.exercises\.check_\w+\(", text)) >= 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_notebooks_contain_no_solution_line(path, student_dir):
    originals = _solution_cells(_cells(path))
    students = _solution_cells(_cells(student_dir / path.name))
    assert len(students) == len(originals) >= 2
    for original, student in zip(originals, students):
        student_lines = {line.strip() for line in _source(student).splitlines()}
        leaked = [line for line in _marked_lines(_source(original)) if line in student_lines]
        assert not leaked, f"{path.name}: solution lines left in the student copy: {leaked}"
        assert make_assignments.STUB_LINES[1] in _source(student)
    text = (student_dir / path.name).read_text()
    assert make_assignments.BEGIN not in text and "{solution-start}" not in text
    # No raw MyST directive or option: the prompts are plain Markdown, numbered as in the book.
    for raw in ("{exercise}", "{solution-end}", ":label:", ":class:", "```{", ":::{"):
        assert raw not in text, f"{path.name}: {raw!r} left in the student copy"
    number = make_assignments.chapter_number(path.stem)
    assert f"### Exercise {number + '.' if number else ''}1: " in text
    assert "solutions are hidden" not in text
    if "solutions are hidden" in path.read_text():  # the book's sentence, reworded
        assert "the cell below each exercise" in text
    nb = json.loads(text)
    assert all(c.get("outputs", []) == [] for c in nb["cells"] if c["cell_type"] == "code")


def test_keep_leaves_a_learners_copy_alone(tmp_path):
    """`make lab` writes the student copies with --keep: work in progress is never lost."""
    source = tmp_path / "book"
    source.mkdir()
    for name in ("01_builtin_losses.ipynb", "03_summing_losses.ipynb"):
        (source / name).write_text((ROOT / "book" / name).read_text())
    out = tmp_path / "student"
    assert set(make_assignments.make_assignments(source, out, keep=True)) == {
        "01_builtin_losses.ipynb",
        "03_summing_losses.ipynb",
    }
    (out / "01_builtin_losses.ipynb").write_text("my work")
    assert list(make_assignments.make_assignments(source, out, keep=True)) == []
    assert (out / "01_builtin_losses.ipynb").read_text() == "my work"


def test_make_lab_opens_the_student_copies():
    makefile = (ROOT / "Makefile").read_text()
    lab = re.search(r"^lab:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "make_assignments.py --keep book _build/student" in lab
    assert "jupyter lab _build/student" in lab
    authors = re.search(r"^lab-authors:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "jupyter lab book" in authors


def test_scaffolding_around_the_markers_stays():
    source = (
        'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n'
    )
    assert make_assignments.strip_solutions(source) == (
        'def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n    raise NotImplementedError()'
    )
    with pytest.raises(ValueError, match="without a matching END"):
        make_assignments.strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_a_student_notebook_stops_at_the_first_stub(student_dir):
    nb = nbformat.read(student_dir / "01_builtin_losses.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "book")}}
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="is not done yet"):
        client.execute()
    errors = [
        (cell, output)
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    unexpected = [
        (c.source[:40], e["ename"])
        for c, e in errors
        if "raises-exception" not in c.metadata.get("tags", []) and e["ename"] != "ExerciseNotDone"
    ]
    assert not unexpected, unexpected
    stub_cell, error = errors[-1]
    assert error["ename"] == "ExerciseNotDone"
    assert "mlh.exercises.check_mean_squared_error" in stub_cell.source
    # One short line, not a traceback through the checker's frames.
    (line,) = error["traceback"]
    assert line.startswith("ExerciseNotDone: mean_squared_error is not done yet"), line


def test_an_exercise_directive_becomes_plain_markdown():
    source = (
        "Intro.\n\n```{exercise}\n:label: ex-1\n:class: x\n\n**Title** (easy, 5 minutes)\n\n"
        "Text with code:\n\n```python\nx = 1\n```\n\nMore text.\n```\nAfter."
    )
    assert make_assignments.exercise_markdown(source, 2) == (
        "Intro.\n\n### Exercise 2: Title (easy, 5 minutes)\n\nText with code:\n\n"
        "```python\nx = 1\n```\n\nMore text.\nAfter."
    )
    assert make_assignments.exercise_markdown("No exercise.", 1) == "No exercise."


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbgrader_metadata_script_is_idempotent_and_complete(path, tmp_path):
    copy = tmp_path / path.name
    copy.write_text(path.read_text())
    totals = nbgrader_cells.process_file(copy)
    first = copy.read_text()
    assert nbgrader_cells.process_file(copy) == totals and copy.read_text() == first
    nb = nbformat.read(copy, as_version=4)
    nbformat.validate(nb)
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids)
    graded = [c.metadata.nbgrader for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(graded) >= 2 and len(answers) >= 2 and len(totals) >= 2
    assert all(g["points"] in (1, 2, 3) and g["locked"] for g in graded)
    assert all("solution" in c.metadata.tags and c.id.endswith("-answer") for c in answers)
    grade_ids = [c.metadata.nbgrader["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(set(grade_ids)) == len(grade_ids)
    marked = [c for c in nb.cells if make_assignments.BEGIN in c.source]
    assert all(c.metadata.get("nbgrader", {}).get("solution") for c in marked)


plain_citations = _load("plain_citations")


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("{cite:t}`lin2017focal`", "Lin et al. (2017)"),
        ("{cite:p}`lin2017focal`", "(Lin et al., 2017)"),
        ("{cite:alp}`bowman2016generating`", "Bowman et al., 2016"),
        ("{cite:p}`lin2017focal{Table 1}`", "(Lin et al., 2017, Table 1)"),
        ("{cite:t}`arjovsky2017towards`", "Arjovsky and Bottou (2017)"),
    ],
)
def test_a_citation_reads_as_plain_text_in_a_copy(role, expected):
    bib = plain_citations.read_bib()
    assert plain_citations.plain_citations(f"see {role}.", ["lin2017focal"], bib) == (
        f"see {expected}."
    )


def test_a_bibliography_lists_the_notebooks_citations_in_a_copy():
    bib = plain_citations.read_bib()
    text = "## References\n\n```{bibliography}\n:filter: docname in docnames\n```\n"
    listing = plain_citations.plain_citations(text, ["lin2017focal"], bib)
    assert "{bibliography}" not in listing
    assert "- Lin et al. (2017). Focal Loss for Dense Object Detection." in listing
    with pytest.raises(KeyError, match="nosuchkey"):
        plain_citations.plain_citations("{cite:p}`nosuchkey`", [], bib)


def _exercise(label, extra=""):
    return [
        nbformat.v4.new_markdown_cell(
            f"```{{exercise}}\n:label: {label}\n{extra}\n**T** (medium, 5 minutes)\n\nWrite f.\n```"
        ),
        nbformat.v4.new_markdown_cell(f"```{{solution-start}} {label}\n:class: dropdown\n```"),
        nbformat.v4.new_code_cell(
            "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
            metadata={"tags": ["solution"]},
        ),
        nbformat.v4.new_markdown_cell("```{solution-end}\n```"),
        nbformat.v4.new_code_cell("assert mlh.exercises.check_f(f)"),
    ]


def test_a_written_exercise_gets_a_manually_graded_answer_cell_after_its_check():
    nb = nbformat.v4.new_notebook()
    nb.cells = [*_exercise("ex-w", ":class: written"), *_exercise("ex-c")]
    nbgrader_cells.process(nb)
    assert nbgrader_cells.add_written_answers(nb) == ["ex-w"]
    assert nbgrader_cells.add_written_answers(nb) == []  # idempotent
    nbformat.validate(nb)
    lead, answer, following = nb.cells[5], nb.cells[6], nb.cells[7]
    assert nb.cells[4].metadata.nbgrader["grade_id"] == "ex-w-check"
    assert lead.cell_type == "markdown" and "nbgrader" not in lead.metadata
    assert answer.cell_type == "markdown" and answer.id == "ex-w-written"
    assert answer.source == nbgrader_cells.TEXT_STUB
    assert dict(answer.metadata.nbgrader) == {
        "grade": True,
        "grade_id": "ex-w-written",
        "locked": False,
        "points": nbgrader_cells.WRITTEN_POINTS,
        "schema_version": 3,
        "solution": True,
        "task": False,
    }
    assert ":label: ex-c" in following.source
    assert not any(c.id.startswith("ex-c-written") for c in nb.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_written_exercise_has_an_answer_cell_in_the_copies(path, student_dir):
    book = nbformat.read(path, as_version=4)
    written = nbgrader_cells.written_labels(book.cells)
    assert not any("-written" in c.id for c in book.cells)  # the book's notebooks stay as they are
    source = make_assignments.nbgrader_source(json.loads(path.read_text()))
    for cells in (source["cells"], _cells(student_dir / path.name)):
        answers = [
            c["metadata"]["nbgrader"]["grade_id"]
            for c in cells
            if c["cell_type"] == "markdown" and c["metadata"].get("nbgrader", {}).get("solution")
        ]
        assert answers == [f"{label}-written" for label in written]
