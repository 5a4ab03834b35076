"""Copy the parts of MathJax 3 the book needs out of its installed copy (`make mathjax`).

Usage: python scripts/vendor_mathjax.py OUTPUT

MathJax 3.2.2 comes from PyPI as ``django-static-mathjax`` (pinned in requirements.txt): a
data-only wheel holding MathJax's own ``es5`` build, with no dependency (Django is not
needed to install it or to read its files), so the book needs nothing but Python to serve
its formulas. OUTPUT (e.g. ``_build/mathjax``) receives ``mathjax/``: the combined component
``tex-mml-chtml.js`` (what Sphinx loads from a CDN by default), the TeX extensions it
loads on demand (``input/``), the CHTML output with its fonts (``output/chtml*``), the menu
(``ui/``), the accessibility components (``a11y/``, ``sre/``) and ``adaptors/``. The
book's Sphinx configuration serves OUTPUT as a static folder, so every formula renders
without a network. MathJax is Apache-2.0 licensed; its LICENSE is copied along.
"""

from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "django-static-mathjax"
VERSION = "3.2.2"  # MathJax's version; the wheel's fourth number is its packaging

KEEP = ("tex-mml-chtml.js", "input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre")
KEEP += ("adaptors",)


def installed_mathjax() -> Path:
    """The installed MathJax's root folder (holding ``es5/`` and ``LICENSE``)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        message = f"{DISTRIBUTION} is not installed: pip install -r requirements.txt"
        raise SystemExit(message) from None
    if not dist.version.startswith(VERSION):
        raise SystemExit(f"{DISTRIBUTION} {dist.version} installed, MathJax {VERSION} expected")
    root = Path(str(dist.locate_file("mathjax/static/mathjax")))
    if not (root / "es5" / KEEP[0]).is_file():
        raise SystemExit(f"{root}: no es5/{KEEP[0]}; reinstall {DISTRIBUTION}")
    return root


def vendor(source: Path, output: Path) -> Path:
    """Copy what the book needs from ``source`` (MathJax's root) into ``output/mathjax``."""
    target = output / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    for name in KEEP:
        origin, dest = source / "es5" / name, target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, dest)
        else:
            shutil.copy2(origin, dest)
    shutil.copy2(source / "LICENSE", target / "LICENSE")
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    target = vendor(installed_mathjax(), Path(argv[1]))
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"MathJax copied to {target} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
