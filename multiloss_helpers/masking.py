r"""Means over the entries a mask selects, for losses with missing labels.

A sample without a label for a task contributes nothing to that task's loss. The usual
``(loss * mask).mean()`` divides by every sample, labelled or not, so the loss shrinks
with the share of missing labels; and a NaN in a masked-out entry (a missing label stored
as NaN) still poisons the value and the gradient, because ``NaN * 0`` is NaN.
:func:`masked_mean` divides by the number of selected entries and selects with
``torch.where`` before the sum, so a masked-out entry reaches neither.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._validation import check_int, check_real_floating, check_same_device, check_tensor, describe

__all__ = ["masked_mean"]


def _check_dims(dim: Any, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    items = dim if isinstance(dim, (tuple, list)) else (dim,)
    if isinstance(dim, (tuple, list)) and not dim:
        raise ValueError("`dim` must name at least one dimension, or be None for all, got ()")
    dims = []
    for item in items:
        value = check_int(item, "dim")
        if not -max(ndim, 1) <= value < max(ndim, 1):
            raise ValueError(
                f"`dim` must be in [{-max(ndim, 1)}, {max(ndim, 1)}) for `values` with "
                f"{ndim} dimensions, got {value}"
            )
        dims.append(value % max(ndim, 1))
    if len(set(dims)) != len(dims):
        raise ValueError(f"`dim` names a dimension twice: {dim!r}")
    return tuple(dims)


def masked_mean(
    values: Tensor, mask: Tensor, *, dim: int | tuple[int, ...] | None = None
) -> Tensor:
    r"""The mean of ``values`` over the entries where ``mask`` is ``True``.

    .. math::

        \operatorname{masked\_mean}(v, m) = \frac{\sum_i m_i v_i}{\max(1, \sum_i m_i)}

    over all entries, or over ``dim`` (``keepdim=False``). Three things differ from
    ``(values * mask).mean()``:

    - the denominator is the number of selected entries, not of all entries, so the
      loss of the labelled samples does not shrink as labels go missing;
    - an all-``False`` mask (a batch with no label for the task) gives ``0``, still
      connected to the graph: ``backward`` runs and gives zero gradients, not NaN;
    - masked-out entries are replaced by 0 with ``torch.where`` before the sum, so NaN or
      inf there reaches neither the value nor the gradient with respect to ``values``
      (exactly 0 at those entries; ``NaN * 0`` would be NaN).

    What it cannot do: undo a NaN made *upstream*. If a missing label stored as NaN goes
    into the loss, e.g. ``(pred - label) ** 2``, the loss's own backward multiplies the 0
    by ``2 (pred - NaN)`` and ``pred`` gets NaN. Replace or select the missing labels
    before the loss (``torch.where(mask, label, 0.0)``, or index the labelled rows); the
    mask then only sets the denominator.

    The mask is broadcast to the shape of ``values`` (e.g. a per-sample mask of shape
    ``(N, 1)`` for values ``(N, K)``). float16 and bfloat16 values are summed in float32
    and the result has the input's dtype. Under DDP the local count is not the global one:
    for a mean over every process's labelled samples see :func:`ddp_mean`.

    Args:
        values: a floating-point tensor, e.g. per-sample losses with
            ``reduction="none"``.
        mask: a ``bool`` tensor broadcastable to the shape of ``values``; ``True``
            selects an entry.
        dim: a dimension or a tuple of dimensions to average over; ``None`` averages over
            all. Default: ``None``.

    Returns:
        A scalar, or ``values``' shape without ``dim``; the input's dtype.

    Example:
        >>> losses = torch.tensor([1.0, float("nan"), 3.0, 5.0], requires_grad=True)
        >>> labelled = torch.tensor([True, False, True, False])
        >>> masked_mean(losses, labelled).item()  # (1 + 3) / 2; the NaN is not selected
        2.0
        >>> masked_mean(losses, labelled).backward()
        >>> losses.grad
        tensor([0.5000, 0.0000, 0.5000, 0.0000])
        >>> none = masked_mean(losses, torch.zeros(4, dtype=torch.bool))  # no label
        >>> none.item(), none.requires_grad  # 0, not NaN, and still on the graph
        (0.0, True)
        >>> masked_mean(torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
        ...             torch.tensor([[True, False], [True, True]]), dim=1)
        tensor([1.0000, 3.5000])
    """
    check_tensor(values, "values")
    check_real_floating(values, "`values`")
    if not isinstance(mask, Tensor):
        raise TypeError(f"`mask` must be a bool tensor, got {describe(mask)}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"`mask` must be a bool tensor, got {mask.dtype}; compare to get one "
            "(e.g. `labels != -1`, or `weights > 0`)"
        )
    check_same_device(mask, "mask", values, "values")
    try:
        selected = mask.expand(values.shape)
    except RuntimeError:
        raise ValueError(
            f"`mask` of shape {tuple(mask.shape)} does not broadcast to the shape of "
            f"`values`, {tuple(values.shape)}"
        ) from None
    dims = _check_dims(dim, values.dim())
    dtype = torch.float64 if values.dtype == torch.float64 else torch.float32
    # where() before the sum: a masked-out NaN or inf reaches neither value nor gradient
    kept = torch.where(
        selected, values.to(dtype), torch.zeros((), dtype=dtype, device=values.device)
    )
    if dims is None or values.dim() == 0:
        total, count = kept.sum(), selected.sum()
    else:
        total, count = kept.sum(dim=dims), selected.sum(dim=dims)
    return (total / count.clamp_min(1).to(dtype)).to(values.dtype)
