"""Guards on the exercise checks: each fails on its own when what it guards is half done.

- A module of ``multiloss_helpers/exercises/`` is private (``_harness.py``), or a chapter
  module named after its chapter's notebook: ``chNN_<topic>.py`` for ``book/NN_<topic>.ipynb``,
  ``appendix_<topic>.py`` for ``book/appendix_<topic>.ipynb``.
- Every check lives in a chapter module, is listed in its ``__all__`` and is exported as
  ``mlh.exercises.check_<name>``.
- Every public check has, in its chapter's test file (``test_chNN.py``, ``test_appendix.py``),
  a right answer, at least three typical wrong answers and a stub row; every row of a table
  names a public check of that chapter.

The tables are read here, from the files themselves, so that these guards do not depend on
which other tests were collected.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

import multiloss_helpers as mlh

from .cases import RIGHT, STUB, WRONG, Case

HERE = Path(__file__).resolve().parent
EXERCISES = Path(mlh.exercises.__file__).resolve().parent
BOOK = HERE.parents[1] / "book"
CHAPTER = re.compile(r"(?:ch(?P<number>\d\d)|appendix)_(?P<topic>[a-z0-9]+(?:_[a-z0-9]+)*)")
TABLE = re.compile(r"test_(ch\d\d|appendix)")
CHECKS = sorted(name for name in mlh.exercises.__all__ if name.startswith("check_"))


def _chapter_module_names() -> list[str]:
    return sorted(path.stem for path in EXERCISES.glob("*.py") if not path.stem.startswith("_"))


def _chapter_module(name: str) -> ModuleType:
    return importlib.import_module(f"{mlh.exercises.__name__}.{name}")


def _test_file(module_name: str) -> str:
    """``ch01_builtin_losses`` -> ``test_ch01``; ``appendix_pitfalls`` -> ``test_appendix``."""
    return f"test_{module_name.split('_')[0]}"


def _table(test_file: str) -> list[Case]:
    if not (HERE / f"{test_file}.py").exists():
        return []
    return list(importlib.import_module(f".{test_file}", __package__).CASES)


def _home(check: str) -> str:
    """The name of the chapter module that defines ``check``."""
    return getattr(mlh.exercises, check).__module__.rpartition(".")[2]


@pytest.mark.parametrize("name", _chapter_module_names())
def test_every_exercise_module_is_named_after_its_chapter_notebook(name):
    match = CHAPTER.fullmatch(name)
    assert match, (
        f"exercises/{name}.py: name a chapter module chNN_<topic>.py or appendix_<topic>.py"
    )
    number = match["number"]
    notebook = f"{number}_{match['topic']}" if number else name
    assert (BOOK / f"{notebook}.ipynb").exists(), (
        f"exercises/{name}.py: no notebook book/{notebook}.ipynb; the topic is the notebook's name"
    )


@pytest.mark.parametrize("name", _chapter_module_names())
def test_every_check_of_a_chapter_module_is_listed_and_exported(name):
    module = _chapter_module(name)
    defined = {
        check
        for check, fn in inspect.getmembers(module, inspect.isfunction)
        if check.startswith("check_") and fn.__module__ == module.__name__
    }
    assert defined, f"exercises/{name}.py holds no check: a chapter without checks has no module"
    assert sorted(module.__all__) == sorted(defined), f"{name}.__all__ should list its checks"
    for check in defined:
        assert getattr(mlh.exercises, check, None) is getattr(module, check), (
            f"{check} is not exported as mlh.exercises.{check}"
        )


def test_every_public_check_lives_in_a_chapter_module():
    assert set(mlh.exercises.__all__) == {"CheckResult", *CHECKS}
    homeless = [check for check in CHECKS if not CHAPTER.fullmatch(_home(check))]
    assert not homeless, f"checks outside a chapter module: {homeless}"


@pytest.mark.parametrize("check", CHECKS)
def test_every_public_check_has_a_right_answer_three_wrong_ones_and_a_stub(check):
    test_file = _test_file(_home(check))
    kinds = Counter(case.kind for case in _table(test_file) if case.check == check)
    assert kinds[RIGHT] >= 1 and kinds[WRONG] >= 3 and kinds[STUB] == 1, (
        f"{check}: tests/exercises/{test_file}.py has {dict(kinds)} rows; it needs a right "
        "answer, at least three wrong answers and one stub"
    )


@pytest.mark.parametrize(
    "test_file", sorted(p.stem for p in HERE.glob("test_*.py") if TABLE.fullmatch(p.stem))
)
def test_every_row_names_a_public_check_of_its_chapter(test_file):
    rows = {case.check for case in _table(test_file)}
    stray = sorted(c for c in rows if c not in CHECKS or _test_file(_home(c)) != test_file)
    assert not stray, (
        f"tests/exercises/{test_file}.py has rows for {stray}, not checks of its chapter"
    )
