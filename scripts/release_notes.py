"""The release notes of a version: its section of CHANGELOG.md, and the version checks.

Usage:
    python scripts/release_notes.py version          print multiloss_helpers.__version__
    python scripts/release_notes.py notes [VERSION]  print VERSION's CHANGELOG.md section
                                                     (default: the package's version)

The release workflow (.github/workflows/release.yml) uses both; tests/house/test_release.py
keeps ``__version__``, CITATION.cff and the changelog's top version in step. The version is
read from the source file (no import, so no torch needed).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = re.compile(r"^## \[(?P<version>[^\]]+)\](?P<rest>.*)$", re.M)


def package_version(root: Path = ROOT) -> str:
    """``__version__`` as written in ``multiloss_helpers/__init__.py``."""
    text = (root / "multiloss_helpers" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', text, re.M)
    if not found:
        raise ValueError('no `__version__ = "..."` line in multiloss_helpers/__init__.py')
    return found.group(1)


def changelog_versions(text: str) -> list[str]:
    """The versions of the changelog's ``## [X.Y.Z]`` headings, top first (not Unreleased)."""
    return [m["version"] for m in HEADING.finditer(text) if m["version"] != "Unreleased"]


def section(text: str, version: str) -> str:
    """The body of ``version``'s section of the changelog (without its heading)."""
    headings = list(HEADING.finditer(text))
    for i, match in enumerate(headings):
        if match["version"] == version:
            end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
            body = text[match.end() : end]
            # link references ("[0.1.0]: https://...") at the end belong to the whole file
            body = re.sub(r"^\[[^\]]+\]: \S+\s*$", "", body, flags=re.M)
            return body.strip() + "\n"
    raise ValueError(f"CHANGELOG.md has no section for version {version}")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in ("version", "notes"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "version":
        print(package_version())
        return 0
    version = argv[2] if len(argv) > 2 else package_version()
    sys.stdout.write(section((ROOT / "CHANGELOG.md").read_text(), version))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
