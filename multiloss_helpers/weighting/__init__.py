"""Weighting strategies: one small module per method, weights computed apart from backward."""

from __future__ import annotations

from .dwa import DWA
from .gradnorm import GradNorm
from .pcgrad import assign_grad, pcgrad
from .uncertainty import UncertaintyWeighting

__all__ = ["DWA", "GradNorm", "UncertaintyWeighting", "assign_grad", "pcgrad"]
