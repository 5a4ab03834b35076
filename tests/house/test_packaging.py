"""The package as a user installs it: a wheel built from the sources, installed into a
fresh virtual environment, imports and carries its type marker and its licence.

`make dist` builds the wheel and the sdist with `python -m build` and runs `twine check`;
this test needs only pip, so it runs in `make test` (about 20-40 s, most of it pip
fetching setuptools for the isolated build).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

import multiloss_helpers as mlh

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "multiloss_helpers"]


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built by pip from a copy of the sources (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", out, src)
    (found,) = out.glob("multiloss_helpers-*.whl")
    return found


def test_wheel_carries_the_type_marker_and_the_licence(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "multiloss_helpers/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    assert not any(n.startswith(("tests/", "book/", "benchmarks/")) for n in names)
    assert wheel.name.startswith(f"multiloss_helpers-{mlh.__version__}-")


def test_wheel_installs_into_a_fresh_venv_and_imports(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    if not python.exists():  # Windows layout
        python = env_dir / "Scripts" / "python.exe"
    # The wheel alone goes in; torch & co. come from this environment's site-packages,
    # appended after the fresh venv's own, so nothing is downloaded again.
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel)
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    (site / "_outer_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    out = _run(
        python,
        "-c",
        "import pathlib, multiloss_helpers as m; "
        "print(m.__version__); print(pathlib.Path(m.__file__).parent); "
        "print((pathlib.Path(m.__file__).parent / 'py.typed').exists()); "
        "print(float(m.focal_loss(__import__('torch').zeros(2, 3), "
        "__import__('torch').tensor([0, 2]), gamma=0.0)))",
        cwd=tmp_path,
    )
    version, location, typed, value = out.split()
    assert version == mlh.__version__
    assert Path(location).is_relative_to(env_dir), f"imported from {location}, not the wheel"
    assert typed == "True"
    assert abs(float(value) - 1.0986123) < 1e-5  # log(3): uniform logits over 3 classes
