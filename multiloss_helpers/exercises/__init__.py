r"""Self-checks for the book's exercises.

Each ``check_*`` function runs a student's function on fresh inputs and by properties,
prints a one-line verdict, and returns a :class:`CheckResult` that is truthy when the
answer works. A failed check prints a hint about *what* is wrong (which input, which
property), never the solution. ``NotImplementedError`` (an unfinished exercise stub) is let
through, so a student notebook stops at the first exercise that is not done yet.
Investigation checks take a measured finding instead of a function, rerun the experiment
and accept the finding within a tolerance.

The checks live in one module per part of the book (``foundations``: chapters 1-2,
``combining``: 3-7, ``imbalance``: 8-9, ``weighting``: 10-11, ``regularisers``: 12,
``wild``: 13, ``two_players``: 14, ``objectives``: 15, ``pitfalls``: the appendix;
``investigations`` and ``investigations_combining`` hold the investigation checks of
chapters 1, 4 and 7); ``_harness`` holds the machinery they share. Every check is
importable from here.

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

from . import (
    combining,
    foundations,
    imbalance,
    investigations,
    investigations_combining,
    objectives,
    pitfalls,
    regularisers,
    two_players,
    weighting,
    wild,
)
from ._harness import CheckResult
from .combining import *  # noqa: F403
from .foundations import *  # noqa: F403
from .imbalance import *  # noqa: F403
from .investigations import *  # noqa: F403
from .investigations_combining import *  # noqa: F403
from .objectives import *  # noqa: F403
from .pitfalls import *  # noqa: F403
from .regularisers import *  # noqa: F403
from .two_players import *  # noqa: F403
from .weighting import *  # noqa: F403
from .wild import *  # noqa: F403

# Documented (and cross-referenced) as multiloss_helpers.exercises.CheckResult.
CheckResult.__module__ = __name__

__all__ = sorted(
    [
        "CheckResult",
        *combining.__all__,
        *foundations.__all__,
        *imbalance.__all__,
        *investigations.__all__,
        *investigations_combining.__all__,
        *objectives.__all__,
        *pitfalls.__all__,
        *regularisers.__all__,
        *two_players.__all__,
        *weighting.__all__,
        *wild.__all__,
    ]
)
