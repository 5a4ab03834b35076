"""The book's own Sphinx extensions (book/_ext/), on a small Sphinx project."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "book" / "_ext"


def _load(name):
    return load_script(name, EXT)


def test_marker_lines_are_dropped_and_the_rest_is_kept():
    markers = _load("solution_markers")
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\nf(1)"
    assert markers.strip_markers(source) == "def f(x):\n    return x\n\nf(1)"
    assert markers.strip_markers("x = 1  # ### BEGIN SOLUTION") == "x = 1  # ### BEGIN SOLUTION"


def test_a_built_page_shows_the_solution_without_its_markers(tmp_path):
    sphinx = pytest.importorskip("sphinx.application")
    (tmp_path / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(EXT)!r})\nextensions = ['solution_markers']\n"
    )
    (tmp_path / "index.rst").write_text(
        "Page\n====\n\n.. code-block:: python\n\n   def f(x):\n       ### BEGIN SOLUTION\n"
        "       return 2 * x\n       ### END SOLUTION\n"
    )
    app = sphinx.Sphinx(
        tmp_path, tmp_path, tmp_path / "_build", tmp_path / "_doctrees", "html", status=None
    )
    app.build()
    html = (tmp_path / "_build" / "index.html").read_text()
    assert "SOLUTION" not in html
    assert "return" in html and "def" in html
