r"""Pareto fronts: which points no other point beats on every objective."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import describe

__all__ = ["pareto_front"]


def pareto_front(points: Tensor) -> Tensor:
    r"""A mask of the non-dominated rows of ``points``, every objective minimised.

    Row :math:`a` is *dominated* when another row :math:`b` is at least as good
    on every objective and strictly better on one:

    .. math::

        b \prec a \iff b_k \le a_k \ \forall k \ \text{ and } \ \exists k:\ b_k < a_k

    The Pareto front is the set of rows that no row dominates. Equal rows do not
    dominate each other, so duplicates on the front are all kept. Maximise an
    objective by negating its column. The comparison is all-pairs, :math:`O(N^2 K)`
    memory-light enough for the few thousand points of a weight sweep.

    Args:
        points: ``(N, K)`` real values, one row per point (e.g. per model), one
            column per objective; NaN is refused (it is neither better nor worse).

    Returns:
        A bool tensor of shape ``(N,)``, ``True`` for the non-dominated rows.

    Example:
        >>> points = torch.tensor([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [2.0, 2.0], [4.0, 1.0]])
        >>> pareto_front(points)  # (3, 3) is dominated by (2, 2); the duplicate stays
        tensor([ True,  True, False,  True,  True])
    """
    if not isinstance(points, Tensor):
        raise TypeError(f"`points` must be an (N, K) tensor, got {describe(points)}")
    if points.dim() != 2 or points.shape[1] == 0:
        raise ValueError(f"`points` must have shape (N, K) with K >= 1, got {tuple(points.shape)}")
    if points.is_complex() or points.dtype == torch.bool:
        raise TypeError(f"`points` must hold real numbers, got {points.dtype}")
    if points.is_floating_point() and bool(torch.isnan(points).any()):
        raise ValueError("`points` must not contain NaN: a NaN objective cannot be compared")
    mask = torch.ones(points.shape[0], dtype=torch.bool, device=points.device)
    for start in range(0, points.shape[0], 1024):  # bounded memory: 1024 x N x K at a time
        block = points[start : start + 1024]
        no_worse = (points[None, :, :] <= block[:, None, :]).all(dim=2)  # [a, b]: b <= a
        better = (points[None, :, :] < block[:, None, :]).any(dim=2)
        mask[start : start + 1024] = ~(no_worse & better).any(dim=1)
    return mask
