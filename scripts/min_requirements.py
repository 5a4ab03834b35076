"""Print the lowest releases that pyproject.toml allows, one requirement a line.

Used by the minimum-versions CI job: ``pip install -r <(python scripts/min_requirements.py)``.
A lower bound ``name>=X.Y`` becomes ``name==X.Y.*`` (the newest patch release of the
oldest allowed minor version), so the job tests what the bound promises.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def lowest(requirement: str) -> str:
    """``"torch>=2.1"`` -> ``"torch==2.1.*"``; refuses a dependency without a lower bound."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9.]*)\s*", requirement)
    if match is None:
        raise ValueError(f"dependency {requirement!r}: expected 'name>=X.Y', got another form")
    name, version = match.groups()
    return f"{name}=={version}.*" if version.count(".") == 1 else f"{name}=={version}"


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        print(lowest(requirement))


if __name__ == "__main__":
    main()
