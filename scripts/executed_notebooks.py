"""Execute each notebook once: nbmake in `make test`, the book build reads the result.

``make test`` runs the notebooks with ``pytest --nbmake --overwrite`` on copies, and
``make book`` renders them from MyST-NB's jupyter-cache (``_config.yml``:
``execute_notebooks: cache``); this script joins the two.

``python scripts/executed_notebooks.py plan CACHE OUT book/*.ipynb``
    copies every notebook that has no executed copy in the cache CACHE to ``OUT/book/``
    and prints the copies' paths, one a line: the notebooks nbmake must execute.
``python scripts/executed_notebooks.py cache CACHE OUT``
    adds every copy in ``OUT/book/`` that nbmake executed to the end without an
    unexpected error to the cache, as the book build would have: the source notebook with
    the copy's outputs, so that the cache matches the source (it keys on code cells).

A notebook missing from the cache (never executed, or changed since) is stale; the
Makefile empties the cache whenever the package, the environment, the kernel settings or
``MLH_SEED`` change, so a cached output is never stale. A `make book` without a `make
test` before it executes the stale notebooks itself, through the same cache.
"""

from __future__ import annotations

import shutil
import sys
from datetime import datetime
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _is_cached(cache, nb: nbformat.NotebookNode) -> bool:
    try:
        cache.match_cache_notebook(nb)
    except KeyError:
        return False
    return True


def plan(cache_dir: str, out_dir: str, notebooks: list[str]) -> None:
    """Copy the notebooks the cache lacks to ``out_dir/book`` and print the copies."""
    cache = get_cache(cache_dir)
    target = Path(out_dir) / "book"
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.ipynb"):  # the copies of the last run are cached or failed
        old.unlink()
    for name in notebooks:
        source = Path(name)
        if not _is_cached(cache, _read(source)):
            shutil.copyfile(source, target / source.name)
            print(target / source.name)


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))  # Python 3.10 has no "Z"


def _executed_seconds(executed: nbformat.NotebookNode) -> float | None:
    """Seconds from the first cell's start to the last cell's end, or None if a cell did
    not run or raised outside a cell tagged ``raises-exception``."""
    starts, ends = [], []
    for cell in executed.cells:
        if cell.cell_type != "code":
            continue
        timing = cell.metadata.get("execution", {})
        raised = any(out.get("output_type") == "error" for out in cell.outputs)
        if "shell.execute_reply" not in timing or (
            raised and "raises-exception" not in cell.metadata.get("tags", [])
        ):
            return None
        starts.append(_stamp(timing["iopub.execute_input"]))
        ends.append(_stamp(timing["shell.execute_reply"]))
    return (max(ends) - min(starts)).total_seconds() if starts else 0.0


def _merged(source: nbformat.NotebookNode, executed: nbformat.NotebookNode):
    """The source notebook with the executed copy's outputs, or None if the code differs."""
    code = [c for c in source.cells if c.cell_type == "code"]
    done = [c for c in executed.cells if c.cell_type == "code"]
    if [c.source for c in code] != [c.source for c in done]:
        return None
    for cell, run in zip(code, done):
        cell.outputs, cell.execution_count = run.outputs, run.execution_count
    if "language_info" in executed.metadata:
        source.metadata["language_info"] = executed.metadata["language_info"]
    return source


def cache_executed(cache_dir: str, out_dir: str, book: str = "book") -> None:
    """Cache every executed copy in ``out_dir/book`` under its source in ``book``."""
    cache = get_cache(cache_dir)
    for copy in sorted((Path(out_dir) / "book").glob("*.ipynb")):
        source_path = Path(book) / copy.name
        executed, source = _read(copy), _read(source_path)
        seconds = _executed_seconds(executed)
        merged = _merged(source, executed) if seconds is not None else None
        if merged is None:
            print(f"not cached (failed, stopped or changed since): {copy}")
            continue
        bundle = CacheBundleIn(
            merged, str(source_path.resolve()), data={"execution_seconds": seconds}
        )
        cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
        print(f"cached {source_path} ({seconds:.1f} s)")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "plan":
        plan(args[0], args[1], args[2:])
    elif command == "cache":
        cache_executed(args[0], args[1])
    else:
        sys.exit(f"unknown command {command!r}: plan or cache")
