r"""Self-checks for the book's exercises.

Each ``check_*`` function runs a student's function on fresh inputs and by properties,
prints a one-line verdict, and returns a :class:`CheckResult` that is truthy when the
answer works. A failed check prints a hint about *what* is wrong (which input, which
property), never the solution. ``NotImplementedError`` (an unfinished exercise stub) is let
through, so a student notebook stops at the first exercise that is not done yet.
Investigation checks take a measured finding instead of a function, rerun the experiment
and accept the finding within a tolerance.

The checks live in one module per chapter, named after the chapter's notebook
``book/NN_<topic>.ipynb``: ``ch01_builtin_losses`` to ``ch15_multi_objective``, and
``appendix_pitfalls`` for the appendix (a chapter without checks has no module). Every
check, investigations included, runs on the machinery of ``_harness``. Each chapter module
lists its checks in ``__all__``; this package imports every chapter module it holds and
exports their checks, so every check is importable from here.

Example:
    >>> def mean_squared_error(input, target, reduction="mean"):
    ...     squared = (input - target) ** 2
    ...     return {"mean": squared.mean(), "sum": squared.sum(), "none": squared}[reduction]
    >>> result = check_mean_squared_error(mean_squared_error)  # doctest: +ELLIPSIS
    ✓ mean_squared_error: ...
    >>> bool(result)
    True
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from ._harness import CheckResult

# Documented (and cross-referenced) as multiloss_helpers.exercises.CheckResult.
CheckResult.__module__ = __name__

# The chapter modules (``chNN_<topic>``, ``appendix_<topic>``), in the order of their names.
_CHAPTERS: tuple[ModuleType, ...] = tuple(
    importlib.import_module(f"{__name__}.{info.name}")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
    if not info.name.startswith("_")
)

globals().update({name: getattr(module, name) for module in _CHAPTERS for name in module.__all__})

__all__ = sorted(["CheckResult", *(name for module in _CHAPTERS for name in module.__all__)])
