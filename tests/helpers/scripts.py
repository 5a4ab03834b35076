"""Load the repository's scripts (``scripts/*.py``, ``book/_ext/*.py``) as modules in tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script(name: str, folder: Path = ROOT / "scripts") -> ModuleType:
    """``folder/<name>.py`` imported as module ``name`` (registered, so dataclasses work)."""
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec and spec.loader, f"no script {folder / name}.py"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
