"""House rules of the repository: table of contents, clean notebooks, set-up cells, docs."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import sys
from pathlib import Path

import pytest
import yaml

import multiloss_helpers as mlh

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(
    p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
)


def _toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["format"] == "jb-book"
    files = [toc["root"]]
    for part in toc["parts"]:
        assert part.get("caption"), "every part of the book has a caption"
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def _config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _source(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


def test_every_notebook_is_in_the_toc_and_every_toc_entry_exists():
    listed = _toc_files()
    stems = {str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS}
    assert stems <= set(listed), f"notebooks missing from _toc.yml: {sorted(stems - set(listed))}"
    for entry in listed:
        matches = [ROOT / f"{entry}{ext}" for ext in (".ipynb", ".md")]
        assert any(m.exists() for m in matches), f"_toc.yml lists {entry}, which does not exist"


def test_toc_parts_use_the_books_captions():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    allowed = {
        "Foundations",
        "Combining losses",
        "Imbalanced data",
        "Beyond fixed weights",
        "Multiple losses in the wild",
        "The multi-objective view",
        "Where multiple losses live today",
        "Practitioners' questions",
        "Appendices",
    }
    assert {part["caption"] for part in toc["parts"]} <= allowed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_clean(path):
    for cell in _code_cells(path):
        assert cell.get("outputs") == [], f"{path.name} has stored outputs"
        assert cell.get("execution_count") is None, f"{path.name} has execution counts"
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_colab_aware_setup(path):
    first = _code_cells(path)[0]
    source = _source(first)
    assert "import multiloss_helpers as mlh" in source
    assert "except ImportError" in source, "installs only when the import fails"
    assert "remove-cell" in first.get("metadata", {}).get("tags", []), (
        "the set-up cell is hidden on the page: run scripts/notebook_cells.py"
    )
    url = _config()["repository"]["url"]
    assert f'repository = "{url}"' in source and "git+{repository}" in source, (
        "the set-up cell installs from the repository named in _config.yml"
    )
    assert "torch==" in source, "the set-up cell pins the torch that is already installed"


def test_setup_cells_are_identical():
    sources = {_source(_code_cells(p)[0]) for p in NOTEBOOKS}
    assert len(sources) == 1, "every notebook starts with the same set-up cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_mlh_alias_only(path):
    source = "\n".join(_source(c) for c in _code_cells(path))
    assert not re.search(r"^from multiloss_helpers", source, re.M)
    assert not re.search(r"torch\.tensor\(\s*\[[^\]]*loss", source), (
        "torch.tensor([...losses]) cuts the graph"
    )


def test_config_is_strict_and_has_launch_buttons():
    config = _config()
    assert config["only_build_toc_files"] is True
    # Executed once per change: the Makefile empties the cache when the package changes.
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["execute"]["cache"].startswith("_build/")
    assert config["execute"]["timeout"] > 0
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert config["launch_buttons"]["colab_url"] and config["launch_buttons"]["binderhub_url"]
    extensions = config["sphinx"]["extra_extensions"]
    assert "sphinx.ext.autodoc" in extensions and "sphinx.ext.napoleon" in extensions
    text = "\n".join(
        p.read_text() for p in [ROOT / "_config.yml", ROOT / "_toc.yml", ROOT / "README.md"]
    )
    assert text.count(config["repository"]["url"]) >= 1


def test_api_reference_covers_every_public_name():
    api = (ROOT / "book" / "api.md").read_text()
    missing = [
        name
        for name in mlh.__all__
        if not name.startswith("_") and f"multiloss_helpers.{name}" not in api
    ]
    assert not missing, f"book/api.md does not document {missing}"


# The book's support code has its own guards (tests/exercises/test_guards.py for the checks).
BOOK_SUPPORT = ("multiloss_helpers.chapters", "multiloss_helpers.exercises")


def _library_modules() -> list:
    """Every module of the library, imported here whether __init__ imports it or not."""
    modules = []
    for info in pkgutil.walk_packages(mlh.__path__, "multiloss_helpers."):
        private_top = info.name.split(".")[1].startswith("_")  # _validation, kernels
        if not private_top and not info.name.startswith(BOOK_SUPPORT):
            modules.append(importlib.import_module(info.name))
    return modules


def _public_names(module) -> list[str]:
    """Functions and classes a module defines: public ones, or its __all__ if it is private."""
    private = module.__name__.rsplit(".", 1)[-1].startswith("_")  # weighting/_base.py
    return [
        name
        for name, obj in vars(module).items()
        if (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
        and not name.startswith("_")
        and (not private or name in getattr(module, "__all__", ()))
    ]


def _export_gaps(module, name: str, api: str) -> list[str]:
    """The steps of CONTRIBUTING.md that the public ``name`` of ``module`` is missing."""
    top = module.__name__.split(".")[1]
    tests = ROOT / "tests" / "lib" / f"test_{top}.py"
    gaps = []
    # A name may stay in its module on purpose (mlh.distributed.run_workers): then api.md
    # documents it under the module's path. Otherwise it is exported and documented.
    if f"{module.__name__}.{name}" not in api:
        if name not in getattr(module, "__all__", ()):
            gaps.append(f"the __all__ of {module.__name__}")
        if getattr(mlh, name, None) is None or name not in mlh.__all__:
            gaps.append("the package root (mlh.__all__)")
        if f"multiloss_helpers.{name}" not in api:
            gaps.append("an entry in book/api.md")
    if not tests.exists() or not re.search(rf"\b{name}\b", tests.read_text()):
        gaps.append(f"a test in tests/lib/{tests.name}")
    return [f"{module.__name__}.{name}: add it to {gap}" for gap in gaps]


def test_every_public_name_of_the_library_is_exported_documented_and_tested():
    """A loss, a dataset, a strategy or any public function added to a library module is
    in its module's __all__, at the root, in book/api.md and in its module's test file."""
    api = (ROOT / "book" / "api.md").read_text()
    modules = _library_modules()
    assert {m.__name__ for m in modules} >= {"multiloss_helpers.losses", "multiloss_helpers.data"}
    gaps = [gap for m in modules for name in _public_names(m) for gap in _export_gaps(m, name, api)]
    assert not gaps, "public names half added:\n" + "\n".join(gaps)


def test_every_dataset_is_in_the_data_section_of_the_api_reference():
    api = (ROOT / "book" / "api.md").read_text()
    section = api.split("\n## Data\n", 1)[1].split("\n## ", 1)[0]
    makers = [m for mod in _library_modules() for m in _public_names(mod) if m.startswith("make_")]
    assert "make_multitask_data" in makers
    missing = [m for m in makers if f"multiloss_helpers.{m}" not in section]
    assert not missing, f"book/api.md lists these datasets outside its Data section: {missing}"


def test_all_is_sorted_and_importable():
    assert list(mlh.__all__) == sorted(mlh.__all__)
    for name in mlh.__all__:
        assert hasattr(mlh, name)


@pytest.mark.parametrize("name", [n for n in mlh.__all__ if not n.startswith("_")])
def test_every_public_name_has_a_docstring_with_an_example(name):
    doc = getattr(mlh, name).__doc__ or ""
    assert "Example" in doc, f"{name} has no example in its docstring"


def test_requirements_pin_the_environment():
    lines = [
        line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
    ]
    lines = [line for line in lines if line]
    assert "torch==2.13.0" in lines
    assert "-e ." in lines
    for line in lines:
        if line != "-e .":
            assert "==" in line, f"requirements.txt pins every package exactly: {line}"
    # sphinx-book-theme 1.3 with pydata-sphinx-theme 0.17 breaks the phone menu.
    assert "sphinx-book-theme==1.2.0" in lines
    assert "pydata-sphinx-theme==0.16.1" in lines
    jb = next(line for line in lines if line.startswith("jupyter-book"))
    major = int(jb.split("==")[1].split(".")[0])
    assert major == 1, "the book is built with Jupyter Book 1.x"


def test_readme_gives_the_two_commands_first():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(make \w+)\s*$", readme, re.M)
    assert commands[:2] == ["make book", "make test"]


def test_ci_runs_the_tests_and_the_strict_book():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make book" in ci
    assert ci.index("make test") < ci.index("make book")
    makefile = (ROOT / "Makefile").read_text()
    assert "-W -n --keep-going" in makefile
    assert "--nbmake" in makefile, "make seeds reruns every notebook with nbmake"
    # make test verifies every notebook with nbmake, and the book renders those executions.
    recipe = makefile.split("\ntest-notebooks:", 1)[1].split("\n\n", 1)[0]
    for option in ("--nbmake", "--overwrite", "--nbmake-timeout", "no:cacheprovider"):
        assert option in recipe, f"make test-notebooks runs pytest {option}"
    assert "--durations=0" in recipe, "make test prints each notebook's time"
    assert "executed_notebooks.py plan" in recipe and "executed_notebooks.py cache" in recipe
    # The notebook cache is emptied whenever the package or the environment changes.
    cache_rule = re.search(r"^\$\(NB_CACHE_STAMP\):(.*)$", makefile, re.M)
    assert cache_rule and "multiloss_helpers" in cache_rule.group(1)
    assert "requirements.txt" in cache_rule.group(1)


def test_workflows_test_on_push_and_on_pull_requests():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test.yml").read_text())
    triggers = workflow.get("on") or workflow.get(True)  # YAML 1.1 reads `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert "pull_request" in triggers
    text = (ROOT / ".github" / "workflows" / "test.yml").read_text()
    for version in ("3.10", "3.11", "3.13"):
        assert f'"{version}"' in text, f"CI runs Python {version}"
    assert "min_requirements.py" in text, "a job tests the lowest versions pyproject allows"
    assert "make lint" in text


def test_pyproject_lower_bounds_are_what_ci_installs():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from min_requirements import lowest
    finally:
        sys.path.pop(0)
    assert lowest("torch>=2.1") == "torch==2.1.*"
    assert lowest("numpy>=1.24.2") == "numpy==1.24.2"
    with pytest.raises(ValueError, match=r"expected 'name>=X\.Y'"):
        lowest("torch")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_code_fits_the_rendered_column(path):
    """The rendered book shows about 80 characters of code before scrolling."""
    long_lines = [
        line for cell in _code_cells(path) for line in _source(cell).splitlines() if len(line) > 88
    ]
    assert not long_lines, f"{path.name} has code lines over 88 characters: {long_lines[:3]}"
