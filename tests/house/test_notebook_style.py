"""Notebook code reads like the package: ruff-formatted at the book's width, short cells,
short functions (exercise solutions excepted: they are what a student writes)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(
    p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)
MAX_CELL_LINES = 40
MAX_FUNCTION_LINES = 25
EXEMPT_TAG = "solution"


def _ruff() -> list[str]:
    """The ruff of this environment (requirements-dev.txt), else the one on PATH."""
    local = Path(sys.executable).with_name("ruff")
    if local.exists():
        return [str(local)]
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed: `make lint` installs it from requirements-dev.txt")
    return [found]


def _checked_code_cells(path: Path) -> list[tuple[int, str]]:
    """(index, source) of every code cell that is not an exercise solution."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    out = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        if EXEMPT_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        source = cell["source"]
        out.append((index, "".join(source) if isinstance(source, list) else source))
    return out


def _python_only(source: str) -> str:
    """Blank out IPython magics and shell escapes so that the cell parses as Python."""
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )


def test_there_are_notebooks():
    assert NOTEBOOKS


def test_notebooks_are_ruff_formatted_at_the_book_width():
    """`ruff format --check book/` with the project's config (book/ruff.toml: 88 columns)."""
    result = subprocess.run(
        [*_ruff(), "format", "--check", "book/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, (
        "run `ruff format book/`; these notebooks are not formatted:\n"
        + result.stdout
        + result.stderr
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_code_cell_is_longer_than_40_lines(path):
    long_cells = [
        f"cell {index}: {len(source.splitlines())} lines"
        for index, source in _checked_code_cells(path)
        if len(source.splitlines()) > MAX_CELL_LINES
    ]
    assert not long_cells, (
        f"{path.name}: code cells over {MAX_CELL_LINES} lines (split them, or move reusable "
        f"code to multiloss_helpers): {long_cells}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_function_is_longer_than_25_lines(path):
    long_functions = []
    for index, source in _checked_code_cells(path):
        tree = ast.parse(_python_only(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"cell {index}: {node.name}() has {length} lines")
    assert not long_functions, (
        f"{path.name}: functions over {MAX_FUNCTION_LINES} lines outside cells tagged "
        f"`{EXEMPT_TAG}` (move them to multiloss_helpers): {long_functions}"
    )
