"""Tag each chapter's set-up cell so that the rendered page does not show it.

The first code cell of every notebook installs and imports the package (see
CONTRIBUTING.md). It stays in the notebook, where Colab and Jupyter run it, and gets the
tag ``remove-cell`` so the book shows neither its code nor its output (the older
``hide-output`` tag is dropped). Idempotent: a second run changes nothing. Only the
tags of that one cell change; cell ids, sources and every other cell are kept as is.

    python scripts/notebook_cells.py book/*.ipynb      # rewrite in place
    python scripts/notebook_cells.py --check book/*.ipynb  # exit 1 if one would change
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SETUP_TAG = "remove-cell"
REPLACED_TAGS = ("hide-output", "hide-input", "hide-cell", "remove-input", "remove-output")


def tag_setup_cell(notebook: dict) -> bool:
    """Give the first code cell the set-up tag; return whether anything changed."""
    cell = next((c for c in notebook["cells"] if c["cell_type"] == "code"), None)
    if cell is None:
        return False
    metadata = cell.setdefault("metadata", {})
    old = list(metadata.get("tags", []))
    new = [t for t in old if t not in REPLACED_TAGS and t != SETUP_TAG] + [SETUP_TAG]
    if new == old:
        return False
    metadata["tags"] = new
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    args = parser.parse_args(argv)
    stale = []
    for path in args.notebooks:
        text = path.read_text(encoding="utf-8")
        notebook = json.loads(text)
        if not tag_setup_cell(notebook):
            continue
        stale.append(path)
        if not args.check:
            # nbformat's own layout: one-space indent, keys as stored, a final newline.
            out = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
            path.write_text(out, encoding="utf-8")
    verb = "would change" if args.check else "changed"
    for path in stale:
        print(f"{verb}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
