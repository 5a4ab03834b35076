"""`make assignments`: student notebooks contain no solution and stop at the first stub."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbclient
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "make_assignments", ROOT / "scripts" / "make_assignments.py"
)
make_assignments = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_assignments)

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
        assert make_assignments.STUB in _source(student)
    text = (student_dir / path.name).read_text()
    assert make_assignments.BEGIN not in text and "{solution-start}" not in text
    nb = json.loads(text)
    assert all(c.get("outputs", []) == [] for c in nb["cells"] if c["cell_type"] == "code")


def test_scaffolding_around_the_markers_stays():
    source = (
        'def f(x):\n    """Doc."""\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n'
    )
    assert make_assignments.strip_solutions(source) == (
        'def f(x):\n    """Doc."""\n    ' + make_assignments.STUB
    )
    with pytest.raises(ValueError, match="without a matching END"):
        make_assignments.strip_solutions("### BEGIN SOLUTION\nx = 1\n")


def test_a_student_notebook_stops_at_the_first_stub(student_dir):
    nb = nbformat.read(student_dir / "01_builtin_losses.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT / "book")}}
    )
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="NotImplementedError"):
        client.execute()
    errors = [
        (cell, output["ename"])
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    unexpected = [
        (c.source[:40], e)
        for c, e in errors
        if "raises-exception" not in c.metadata.get("tags", []) and e != "NotImplementedError"
    ]
    assert not unexpected, unexpected
    stub_cell, name = errors[-1]
    assert name == "NotImplementedError"
    assert "mlh.exercises.check_mean_squared_error" in stub_cell.source
