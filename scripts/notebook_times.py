"""Print how long each cached notebook took to execute, slowest first.

``python scripts/notebook_times.py _build/.jupyter_cache`` after `make test` or a book
build: the cache (MyST-NB's jupyter-cache) records each execution's seconds, whether nbmake
(scripts/executed_notebooks.py) or the book build executed it. Numbers only; no threshold.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(cache_dir: str) -> None:
    from jupyter_cache import get_cache

    if not (Path(cache_dir) / "global.db").exists():
        print(f"no executed notebooks cached in {cache_dir}")
        return
    records = get_cache(cache_dir).list_cache_records()
    rows = sorted(
        ((r.data.get("execution_seconds", float("nan")), Path(r.uri).name) for r in records),
        reverse=True,
    )
    print(f"{'seconds':>8}  notebook (executed once, cached in {cache_dir})")
    for seconds, name in rows:
        print(f"{seconds:8.1f}  {name}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "_build/.jupyter_cache")
