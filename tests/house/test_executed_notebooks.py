"""scripts/executed_notebooks.py: nbmake's executions reach the book's cache, and only those."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from helpers.scripts import load_script
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[2]
executed_notebooks = load_script("executed_notebooks")


def _notebook(*sources: str, tags: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter")]
    nb.cells += [nbformat.v4.new_code_cell(s, metadata={"tags": list(tags)}) for s in sources]
    return nb


def _run(nb: nbformat.NotebookNode, error_in: int | None = None) -> nbformat.NotebookNode:
    """What nbmake --overwrite writes: outputs and nbclient's timing per code cell."""
    done = nbformat.from_dict(nb)
    for i, cell in enumerate(c for c in done.cells if c.cell_type == "code"):
        cell.execution_count = i + 1
        cell.metadata["execution"] = {
            "iopub.execute_input": f"2026-01-01T00:00:0{2 * i}.000000Z",
            "shell.execute_reply": f"2026-01-01T00:00:0{2 * i + 1}.500000Z",
        }
        if i == error_in:
            cell.outputs = [nbformat.v4.new_output("error", ename="E", evalue="", traceback=[])]
        else:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"{i}\n")]
    return done


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "book").mkdir()
    nbformat.write(_notebook("print(0)", "print(1)"), "book/a.ipynb")
    nbformat.write(_notebook("print(2)"), "book/b.ipynb")
    return tmp_path


def test_plan_copies_the_uncached_notebooks_and_cache_fills_the_book_cache(project, capsys):
    executed_notebooks.plan("cache", "exec", ["book/a.ipynb", "book/b.ipynb"])
    assert capsys.readouterr().out.split() == ["exec/book/a.ipynb", "exec/book/b.ipynb"]
    nbformat.write(_run(nbformat.read("exec/book/a.ipynb", 4)), "exec/book/a.ipynb")
    nbformat.write(_run(nbformat.read("exec/book/b.ipynb", 4), error_in=0), "exec/book/b.ipynb")
    executed_notebooks.cache_executed("cache", "exec")
    out = capsys.readouterr().out
    assert "cached book/a.ipynb (3.5 s)" in out and "not cached" in out and "b.ipynb" in out
    # What the book build does: match the source notebook, merge the cached outputs.
    cache = get_cache("cache")
    _, merged = cache.merge_match_into_notebook(nbformat.read("book/a.ipynb", 4))
    assert [c.outputs[0].text for c in merged.cells if c.cell_type == "code"] == ["0\n", "1\n"]
    with pytest.raises(KeyError):
        cache.match_cache_notebook(nbformat.read("book/b.ipynb", 4))
    executed_notebooks.plan("cache", "exec", ["book/a.ipynb", "book/b.ipynb"])
    assert capsys.readouterr().out.split() == ["exec/book/b.ipynb"]
    assert sorted(p.name for p in Path("exec/book").iterdir()) == ["b.ipynb"]


def test_a_changed_notebook_is_stale(project, capsys):
    executed_notebooks.plan("cache", "exec", ["book/a.ipynb"])
    nbformat.write(_run(nbformat.read("exec/book/a.ipynb", 4)), "exec/book/a.ipynb")
    executed_notebooks.cache_executed("cache", "exec")
    nbformat.write(_notebook("print(0)", "print('changed')"), "book/a.ipynb")
    capsys.readouterr()
    executed_notebooks.plan("cache", "exec", ["book/a.ipynb"])
    assert capsys.readouterr().out.split() == ["exec/book/a.ipynb"]


def test_an_expected_error_is_cached_and_a_stopped_run_is_not():
    nb = _notebook("raise ValueError", tags=("raises-exception",))
    assert executed_notebooks._executed_seconds(_run(nb, error_in=0)) == 1.5
    stopped = _run(_notebook("print(0)", "print(1)"))
    del stopped.cells[2].metadata["execution"]
    assert executed_notebooks._executed_seconds(stopped) is None
