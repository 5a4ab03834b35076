"""Copy the parts of MathJax 3 the book needs out of its npm package (`make mathjax`).

Usage: python scripts/vendor_mathjax.py PACKAGE_TGZ SHA256 OUTPUT

PACKAGE_TGZ is the file ``npm pack mathjax@<version>`` downloads; its SHA-256 must equal
SHA256. OUTPUT (e.g. ``_build/mathjax``) receives ``mathjax/``: the combined component
``tex-mml-chtml.js`` (what Sphinx loads from a CDN by default), the TeX extensions it
loads on demand (``input/``), the CHTML output with its fonts (``output/chtml*``), the menu
(``ui/``), the accessibility components (``a11y/``, ``sre/``) and ``adaptors/``. The
book's Sphinx configuration serves OUTPUT as a static folder, so every formula renders
without a network. MathJax is Apache-2.0 licensed; its LICENSE is copied along.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

KEEP = ("tex-mml-chtml.js", "input", "output/chtml", "output/chtml.js", "ui", "a11y", "sre")
KEEP += ("adaptors",)


def vendor(package: Path, sha256: str, output: Path) -> Path:
    """Check ``package``'s digest, then copy what the book needs into ``output/mathjax``."""
    digest = hashlib.sha256(package.read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{package}: SHA-256 {digest}, expected {sha256}")
    target = output / "mathjax"
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(package) as archive:
            archive.extractall(tmp, filter="data")
        es5 = Path(tmp) / "package" / "es5"
        shutil.rmtree(target, ignore_errors=True)
        for name in KEEP:
            source, dest = es5 / name, target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest)
            else:
                shutil.copy2(source, dest)
        shutil.copy2(Path(tmp) / "package" / "LICENSE", target / "LICENSE")
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    target = vendor(Path(argv[1]), argv[2], Path(argv[3]))
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"MathJax copied to {target} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
