"""House rules of the package's structure, read from the source (AST), not from behaviour.

- One parameter-list normaliser: only ``_validation.py`` defines a function that turns
  "a module, a tensor or an iterable" into a list of parameters (``check_params``).
- No private name crosses a module boundary: no ``from .x import _name`` and no
  ``x._name`` where ``x`` is another module of the package. A helper that two modules
  need is a public name of a private module (``_validation.py``, ``_linalg.py``, ...).
- No module imports the package root (``from .. import X`` reaching ``multiloss_helpers``,
  ``import multiloss_helpers``), except the exercise harness's one lazy import, which
  needs the built package to forbid a public function inside a check.
- The root's ``__all__`` is built from the library modules' ``__all__``
  (``mlh.LIBRARY_MODULES``): every public top-level module is one of them.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import multiloss_helpers as mlh

PACKAGE = Path(mlh.__file__).resolve().parent
ROOT_NAME = "multiloss_helpers"
#: The one place allowed to import the package root (lazily, at call time).
ROOT_IMPORT_ALLOWED = {"exercises/_harness.py"}
#: Names a parameter-list normaliser would have.
NORMALISER = re.compile(r"param_list|check_params|as_params|normali[sz]e_params")
#: The book's support code: subpackages whose names are reached as mlh.<pkg>.<name>.
SUPPORT = {"chapters", "exercises"}


def _modules() -> list[tuple[str, ast.Module, tuple[str, ...]]]:
    """(path relative to the package, tree, dotted package of the module) for every file."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        parts = rel.with_suffix("").parts
        package = (ROOT_NAME, *parts[:-1])  # the package a relative import starts from
        out.append((rel.as_posix(), ast.parse(path.read_text(), filename=str(path)), package))
    return out


def _resolve(node: ast.ImportFrom, package: tuple[str, ...]) -> tuple[str, ...]:
    """The dotted module an ``ImportFrom`` reads from, as a tuple of names."""
    if node.level == 0:
        return tuple((node.module or "").split("."))
    base = package[: len(package) - (node.level - 1)]
    return base + tuple(node.module.split(".")) if node.module else base


def _is_module(dotted: tuple[str, ...]) -> bool:
    """Whether ``dotted`` names a module or subpackage of this package."""
    if not dotted or dotted[0] != ROOT_NAME:
        return False
    path = PACKAGE.joinpath(*dotted[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def normaliser_violations() -> list[str]:
    found = []
    for rel, tree, _ in _modules():
        if rel == "_validation.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and NORMALISER.search(
                node.name
            ):
                found.append(f"{rel}:{node.lineno} defines {node.name}")
    return found


def private_import_violations() -> list[str]:
    found = []
    for rel, tree, package in _modules():
        module_aliases: set[str] = set()  # local names bound to another module of the package
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(node, package)
                if source[0] != ROOT_NAME:
                    continue
                for alias in node.names:
                    if _private(alias.name) and not _is_module((*source, alias.name)):
                        found.append(
                            f"{rel}:{node.lineno} imports {alias.name} from {'.'.join(source)}"
                        )
                    if _is_module((*source, alias.name)):
                        module_aliases.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == ROOT_NAME:
                        module_aliases.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            chain = node.value
            while isinstance(chain, ast.Attribute):  # multiloss_helpers.losses._x
                chain = chain.value
            if isinstance(chain, ast.Name) and chain.id in module_aliases:
                found.append(f"{rel}:{node.lineno} reads {ast.unparse(node)}")
    return found


def root_import_violations() -> list[str]:
    found = []
    for rel, tree, package in _modules():
        if rel == "__init__.py" or rel in ROOT_IMPORT_ALLOWED:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(node, package)
                if source == (ROOT_NAME,):
                    names = ", ".join(alias.name for alias in node.names)
                    found.append(f"{rel}:{node.lineno} imports {names} from the package root")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == ROOT_NAME:
                        found.append(f"{rel}:{node.lineno} imports the package root")
    return found


def test_one_parameter_list_normaliser():
    found = normaliser_violations()
    assert not found, f"only _validation.check_params may normalise parameters: {found}"


def test_no_private_name_crosses_a_module_boundary():
    found = private_import_violations()
    assert not found, (
        "a helper two modules need is a public name of a private module "
        f"(e.g. _validation.py): {found}"
    )


def test_no_module_imports_the_package_root():
    found = root_import_violations()
    assert not found, f"import the library module itself, not the package root: {found}"


def test_the_root_all_is_built_from_every_library_module():
    library = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").is_file())
        and not path.name.startswith("_")
    } - SUPPORT
    listed = {module.__name__.rsplit(".", 1)[1] for module in mlh.LIBRARY_MODULES}
    assert library == listed, f"add to or remove from LIBRARY_MODULES: {library ^ listed}"
    names = {name for module in mlh.LIBRARY_MODULES for name in module.__all__}
    assert set(mlh.__all__) == names | {"__version__", "exercises"}
