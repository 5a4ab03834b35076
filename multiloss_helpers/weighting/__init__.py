r"""Task-weighting strategies: one protocol (:class:`Weighting`), one small module per method.

Adding a method: write ``multiloss_helpers/weighting/<method>.py`` with a
:class:`Weighting` subclass, then add it to :data:`STRATEGIES` below (one line).
The shared property tests (``tests/weighting_properties.py``) run on every entry,
and a test fails for a subclass that is missing here.
"""

from __future__ import annotations

from ._base import EqualWeighting, FixedWeighting, Weighting
from .dwa import DWA
from .gradnorm import GradNorm
from .mgda import MGDA
from .pcgrad import PCGrad, pcgrad
from .uncertainty import UncertaintyWeighting

#: Every registered strategy, in the order the book introduces them (the registry, reached
#: as ``mlh.weighting.STRATEGIES``: not in ``__all__``, which lists the package's public names).
STRATEGIES: tuple[type[Weighting], ...] = (
    EqualWeighting,
    FixedWeighting,
    UncertaintyWeighting,
    DWA,
    GradNorm,
    PCGrad,
    MGDA,
)

__all__ = [
    "DWA",
    "EqualWeighting",
    "FixedWeighting",
    "GradNorm",
    "MGDA",
    "PCGrad",
    "UncertaintyWeighting",
    "Weighting",
    "pcgrad",
]
