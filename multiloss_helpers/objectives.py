r"""The multi-objective view: drawing the trade-offs that a set of models reaches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ._validation import describe
from .plotting import _new_axes
from .weighting import pareto_front

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["plot_pareto_front"]


def _check_points(points: Any) -> Tensor:
    """``points`` as a finite ``(N, 2)`` float64 CPU tensor."""
    if isinstance(points, (str, bytes)):
        raise TypeError(f"`points` must be an (N, 2) array of numbers, got {describe(points)}")
    try:
        if isinstance(points, Sequence) and points and all(isinstance(p, Tensor) for p in points):
            points = torch.stack([p.detach().cpu() for p in points])  # one row per model
        if isinstance(points, Tensor):
            values = points.detach().cpu()
        else:  # np.array copies, so a read-only array (e.g. from pandas) gives no warning
            import numpy as np

            values = torch.from_numpy(np.array(points))
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"`points` must be an (N, 2) array of numbers, got {describe(points)}"
        ) from None
    if values.dtype == torch.bool or values.is_complex():
        raise TypeError(f"`points` must hold real numbers, got {values.dtype}")
    if values.dim() != 2 or values.shape[1] != 2 or values.shape[0] == 0:
        raise ValueError(
            "`points` must have shape (N, 2) with N >= 1, one row per model and one "
            f"column per objective, got {tuple(values.shape)}"
        )
    values = values.double()
    if not bool(torch.isfinite(values).all()):
        raise ValueError("`points` must be finite, got NaN or inf entries")
    return values


def plot_pareto_front(
    points: Any,
    *,
    labels: Sequence[Any] | None = None,
    names: tuple[str, str] = ("objective 1", "objective 2"),
    ax: Axes | None = None,
    color: Any = "black",
    title: str | None = None,
) -> Axes:
    r"""Draw models scored on two objectives (both minimised), their Pareto front joined.

    The non-dominated points (:func:`pareto_front`) are filled and joined in order
    of the first objective; the dominated ones are hollow. A point :math:`b`
    dominates :math:`a` when it is no worse on both objectives and better on one:

    .. math::

        b \prec a \iff b_k \le a_k \ (k = 1, 2) \ \text{ and } \ b \ne a

    Typical use: the validation or test losses of the models of a weight sweep,
    with the weights as labels, then other methods drawn on the same axes to see
    whether they land on, behind or beyond the front.

    Args:
        points: ``(N, 2)`` values, one row per model (a tensor on any device, a
            NumPy array or nested sequences); finite. Maximise an objective by
            negating its column.
        labels: one label per point, written next to it (e.g. the sweep's
            weights). Default: ``None`` (no labels).
        names: the two objectives' names, for the axis labels.
            Default: ``("objective 1", "objective 2")``.
        ax: an Axes to draw on. Default: a new figure.
        color: the colour of the points and of the front. Default: ``"black"``.
        title: the title. Default: ``"Pareto front"``.

    Returns:
        The Axes.

    Example:
        >>> points = torch.tensor([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [4.0, 1.0]])
        >>> ax = plot_pareto_front(points, labels=["a", "b", "c", "d"], names=("f1", "f2"))
        >>> ax.get_xlabel(), len(ax.texts)
        ('f1', 4)
    """
    values = _check_points(points)
    if labels is not None and (
        isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence)
    ):
        raise TypeError(
            f"`labels` must be a sequence with one label per point, got {describe(labels)}"
        )
    if labels is not None and len(labels) != len(values):
        raise ValueError(
            f"`labels` must have one entry per point ({len(values)}), got {len(labels)}"
        )
    if not (isinstance(names, (tuple, list)) and len(names) == 2):
        raise TypeError(f"`names` must be a pair of axis labels, got {describe(names)}")
    ax = _new_axes(ax)
    front = pareto_front(values)
    on = values[front]
    on = on[torch.argsort(on[:, 0], stable=True)]
    off = values[~front]
    ax.plot(on[:, 0].numpy(), on[:, 1].numpy(), color=color, lw=1, zorder=2)
    ax.scatter(on[:, 0].numpy(), on[:, 1].numpy(), color=color, zorder=3, label="front")
    if len(off):
        ax.scatter(
            off[:, 0].numpy(),
            off[:, 1].numpy(),
            facecolors="none",
            edgecolors=color,
            zorder=3,
            label="dominated",
        )
    for label, (x, y) in zip(labels or [], values.tolist()):
        ax.annotate(str(label), (x, y), textcoords="offset points", xytext=(4, 6), fontsize="small")
    ax.set(xlabel=str(names[0]), ylabel=str(names[1]))
    ax.set_title(title if title is not None else "Pareto front")
    return ax
