r"""Numerical helpers that several modules share (private module: no public API)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["unit_rows"]


def unit_rows(grads: Tensor) -> tuple[Tensor, Tensor]:
    """Each row divided by its norm, and the norms, computed without overflow or underflow.

    Every row is first divided by its largest absolute entry, so that squaring
    cannot overflow (norms near 1e20 in float32) nor underflow (norms near 1e-12).
    Works in float32 at least (float64 stays float64). A zero row gives a zero
    unit row and norm 0.
    """
    compute = torch.promote_types(grads.dtype, torch.float32)
    values = grads.to(compute)
    tiny = torch.finfo(compute).tiny
    scale = values.abs().amax(dim=1, keepdim=True).clamp_min(tiny)
    scaled = values / scale
    scaled_norms = torch.linalg.vector_norm(scaled, dim=1, keepdim=True)
    unit = scaled / scaled_norms.clamp_min(tiny)
    return unit, (scale * scaled_norms).squeeze(1)
