r"""The book's figures: loss curves, loss distributions, imbalance metrics, Pareto fronts.

Figures use an opaque white background with dark text, so they stay readable
when the rendered book is switched to a dark theme, and a colour-blind-safe
palette. Every function draws on an ``Axes`` (a new one by default) and
returns it, so a reader can add to the figure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor

from ._validation import check_int, describe
from .history import SPLITS, LossHistory
from .metrics import confusion_matrix, precision_recall_curve
from .multiobjective import pareto_front

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from matplotlib.axes import Axes

__all__ = [
    "book_style",
    "plot_confusion_matrix",
    "plot_history",
    "plot_loss_distribution",
    "plot_pareto_front",
    "plot_precision_recall",
    "use_book_style",
]

_STYLE: dict[str, Any] = {
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "text.color": "#1a1a1a",
    "axes.labelcolor": "#1a1a1a",
    "axes.edgecolor": "#4d4d4d",
    "xtick.color": "#1a1a1a",
    "ytick.color": "#1a1a1a",
    "axes.titleweight": "bold",
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.frameon": True,
    "legend.framealpha": 0.9,
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    "grid.color": "#dddddd",
}


def _theme_rc() -> Any:
    """seaborn's whitegrid theme and notebook context, then the book's overrides."""
    import seaborn as sns
    from cycler import cycler

    rc: dict[str, Any] = {}
    rc.update(sns.axes_style("whitegrid"))
    rc.update(sns.plotting_context("notebook"))
    rc.update(_STYLE)
    rc["axes.prop_cycle"] = cycler(color=sns.color_palette("colorblind"))
    return rc


def use_book_style() -> None:
    r"""Apply the book's figure style to matplotlib for the rest of the session.

    Example:
        >>> use_book_style()
        >>> import matplotlib as mpl
        >>> mpl.rcParams["figure.facecolor"]
        'white'
    """
    import matplotlib as mpl

    mpl.rcParams.update(_theme_rc())


@contextmanager
def book_style() -> Iterator[None]:
    r"""The book's figure style inside a ``with`` block only.

    Example:
        >>> import matplotlib.pyplot as plt
        >>> with book_style():
        ...     fig, ax = plt.subplots()
        >>> plt.close(fig)
    """
    import matplotlib as mpl

    with mpl.rc_context(_theme_rc()):
        yield


def _new_axes(ax: Any) -> Axes:
    import matplotlib.pyplot as plt
    from matplotlib.axes import Axes

    if ax is None:
        with book_style():
            _, ax = plt.subplots(layout="constrained")
        return ax
    if not isinstance(ax, Axes):
        raise TypeError(f"`ax` must be a matplotlib Axes or None, got {describe(ax)}")
    return ax


def _check_history_args(
    history: Any, components: Any, level: Any, splits: Any, smooth: Any
) -> tuple[list[str], int | None]:
    """The checked components to draw and the smoothing window."""
    if not isinstance(history, LossHistory):
        raise TypeError(f"`history` must be a LossHistory, got {describe(history)}")
    if level not in ("epoch", "step"):
        raise ValueError(f"`level` must be 'epoch' or 'step', got {level!r}")
    if isinstance(splits, str) or any(s not in SPLITS for s in splits):
        raise ValueError(f"`splits` must be a list drawn from {SPLITS}, got {splits!r}")
    if components is None:
        components = history.components
    elif isinstance(components, str):
        raise TypeError(f"`components` must be a list of names, got the string {components!r}")
    for name in components:
        if name not in history.components:
            raise ValueError(
                f"`components` must be drawn from the logged components {history.components}, "
                f"got {name!r}"
            )
    if smooth is not None:
        smooth = check_int(smooth, "smooth", minimum=1)
    if not components:
        raise ValueError("the history holds no component to plot")
    return list(components), smooth


def _moving_average(values: list[float], window: int) -> list[float]:
    """The mean of each run of ``window`` consecutive values (valid positions only)."""
    series = torch.tensor(values, dtype=torch.float64).view(1, 1, -1)
    kernel = torch.full((1, 1, window), 1.0 / window, dtype=torch.float64)
    return torch.nn.functional.conv1d(series, kernel).flatten().tolist()


def _draw_steps(ax: Axes, history: LossHistory, name: str, colour: Any, smooth: int | None) -> None:
    """One component's per-step curve, with a moving average over a faint raw curve."""
    values = history.steps(name)
    steps = list(range(len(values)))
    window = min(smooth or 1, len(values))
    if window > 1:
        ax.plot(steps, values, color=colour, alpha=0.25, linewidth=1)
        label = f"{name} (train, {window}-step mean)"
        ax.plot(steps[window - 1 :], _moving_average(values, window), color=colour, label=label)
    else:
        ax.plot(steps, values, color=colour, label=f"{name} (train)")
    ax.set_xlabel("training step")


def _draw_epochs(
    ax: Axes, history: LossHistory, name: str, colour: Any, splits: Sequence[str]
) -> None:
    """One component's per-epoch means: solid for train, dashed for validation."""
    for split in splits:
        values = history.epochs(name, split=split)
        if not values:
            continue
        ax.plot(
            range(1, len(values) + 1),
            values,
            linestyle="-" if split == "train" else "--",
            marker="o" if len(values) <= 30 else None,
            markersize=3,
            color=colour,
            label=f"{name} ({split})",
        )
    ax.set_xlabel("epoch")


def plot_history(
    history: LossHistory,
    components: Sequence[str] | None = None,
    *,
    level: str = "epoch",
    splits: Sequence[str] = SPLITS,
    smooth: int | None = None,
    logy: bool = False,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    r"""Plot loss curves: one colour per component, solid for train, dashed for validation.

    Args:
        history: the :class:`LossHistory` returned by :func:`fit`.
        components: which components to draw. Default: every logged one.
        level: ``"epoch"`` (per-epoch means, train and validation) or ``"step"``
            (every training step; validation is per epoch only). Default: ``"epoch"``.
        splits: which of ``"train"`` and ``"val"`` to draw at epoch level.
            Default: both.
        smooth: at step level, a moving-average window in steps that is drawn
            over the raw (faint) curve. Default: ``None`` (raw curve only).
        logy: log scale for the loss axis, for components of different scales.
            Default: ``False``.
        ax: an Axes to draw on. Default: a new figure.
        title: the title. Default: one that says what is drawn.

    Returns:
        The Axes.

    Example:
        >>> history = LossHistory()
        >>> for epoch, (a, b) in enumerate([(2.0, 1.0), (1.0, 0.8)]):
        ...     history.log_epoch({"cls": a, "reg": b}, epoch=epoch)
        >>> ax = plot_history(history)
        >>> [line.get_label() for line in ax.get_lines()]
        ['cls (train)', 'reg (train)']
    """
    components, smooth = _check_history_args(history, components, level, splits, smooth)
    import seaborn as sns

    ax = _new_axes(ax)
    for colour, name in zip(sns.color_palette("colorblind", len(components)), components):
        if level == "step":
            _draw_steps(ax, history, name, colour, smooth)
        else:
            _draw_epochs(ax, history, name, colour, splits)
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel("loss (log scale)" if logy else "loss")
    ax.set_title(title if title is not None else f"Loss components per {level}")
    ax.legend(fontsize="small")
    return ax


def _as_numpy(values: Any, name: str) -> Any:
    import numpy as np

    if isinstance(values, Tensor):
        values = values.detach().cpu()
        if values.is_floating_point():
            values = values.double()
        return values.numpy()
    if isinstance(values, (list, tuple, np.ndarray)):
        return np.asarray(values)
    raise TypeError(f"`{name}` must be a tensor, array or list, got {describe(values)}")


def _check_losses(losses: Any, log_scale: bool) -> Any:
    """Per-sample losses as a finite 1-D NumPy array."""
    import numpy as np

    values = _as_numpy(losses, "losses")
    if values.ndim != 1:
        hint = (
            " A 0-d loss is already reduced: compute it with reduction='none' to get one "
            "value per sample."
            if values.ndim == 0
            else ""
        )
        raise ValueError(
            f"`losses` must be 1-D (one loss per sample), got shape {values.shape}.{hint}"
        )
    if len(values) == 0:
        raise ValueError("`losses` is empty")
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"`losses` must hold numbers, got dtype {values.dtype}")
    if np.iscomplexobj(values):
        raise TypeError(f"`losses` must hold real numbers, got dtype {values.dtype}")
    bad = int((~np.isfinite(values)).sum())
    if bad:
        raise ValueError(
            f"`losses` holds {bad} NaN or infinite value(s); a histogram would drop them "
            "without a word: find where they come from first"
        )
    if log_scale and (values <= 0).any():
        raise ValueError("`log_scale=True` needs strictly positive losses; some are <= 0")
    return values


def _class_column(labels: Any, n: int, class_names: Any) -> tuple[list[str], list[str]]:
    """One class name per sample, and the names in class order (present classes only)."""
    import numpy as np

    label_values = _as_numpy(labels, "labels")
    if label_values.shape != (n,):
        raise ValueError(
            f"`labels` must have one label per loss, shape ({n},), got {label_values.shape}"
        )
    if label_values.dtype == np.bool_ or not np.issubdtype(label_values.dtype, np.integer):
        raise TypeError(f"`labels` must hold integer classes, got dtype {label_values.dtype}")
    if int(label_values.min()) < 0:
        raise ValueError(
            f"`labels` must be class indices >= 0, got {int(label_values.min())}; drop "
            "ignored samples (e.g. label -1 or ignore_index) before plotting"
        )
    top = int(label_values.max())
    if class_names is not None:
        names = list(class_names)
        if len(names) <= top:
            raise ValueError(
                f"`class_names` must name every class up to {top}, got {len(names)} names"
            )
    else:
        names = [str(c) for c in range(top + 1)]
    present = sorted(set(label_values.tolist()))
    return [names[c] for c in label_values], [names[c] for c in present]


def plot_loss_distribution(
    losses: Tensor | Sequence[float],
    labels: Tensor | Sequence[int] | None = None,
    *,
    kind: str = "hist",
    class_names: Sequence[str] | None = None,
    log_scale: bool = False,
    bins: int | str = "auto",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    r"""Plot the distribution of per-sample losses, optionally one curve per class.

    Per-sample losses come from a loss called with ``reduction="none"``; a
    mean-reduced loss is one number and has no distribution, so a 0-d input is
    refused with a message saying so. NaN or infinite losses and negative labels
    (an ``ignore_index`` such as -1) are refused rather than silently dropped.

    Args:
        losses: one finite loss per sample, shape ``(N,)``.
        labels: one class index (>= 0) per sample, to split the distribution by
            class. Default: ``None`` (one distribution).
        kind: ``"hist"`` (seaborn ``histplot``, density per class so that small
            classes stay visible) or ``"ecdf"`` (seaborn ``ecdfplot``: the share
            of samples with loss at most x). Default: ``"hist"``.
        class_names: names for the classes ``0 .. C-1`` in the legend.
            Default: ``None`` (the indices).
        log_scale: log scale for the loss axis (losses often span decades).
            Default: ``False``.
        bins: the histogram's bins (``kind="hist"`` only). Default: ``"auto"``.
        ax: an Axes to draw on. Default: a new figure.
        title: the title. Default: one that says what is drawn.

    Returns:
        The Axes.

    Example:
        >>> import torch.nn.functional as F
        >>> logits, target = torch.randn(100, 3), torch.randint(3, (100,))
        >>> per_sample = F.cross_entropy(logits, target, reduction="none")
        >>> ax = plot_loss_distribution(per_sample, target, kind="ecdf")
        >>> ax.get_xlabel()
        'per-sample loss'
    """
    import pandas as pd
    import seaborn as sns

    if kind not in ("hist", "ecdf"):
        raise ValueError(f"`kind` must be 'hist' or 'ecdf', got {kind!r}")
    values = _check_losses(losses, log_scale)
    frame = pd.DataFrame({"per-sample loss": values})
    hue, order = None, None
    if labels is not None:
        frame["class"], order = _class_column(labels, len(values), class_names)
        hue = "class"
    elif class_names is not None:
        raise ValueError("`class_names` needs `labels`")
    common = {"data": frame, "x": "per-sample loss", "hue": hue, "hue_order": order}
    common.update(log_scale=log_scale, palette="colorblind" if hue else None)
    ax = _new_axes(ax)
    with book_style():
        if kind == "hist":
            sns.histplot(
                **common, stat="density", common_norm=False, element="step", bins=bins, ax=ax
            )
        else:
            sns.ecdfplot(**common, ax=ax)
            ax.set_ylabel("share of samples with loss <= x")
    ax.set_xlabel("per-sample loss")
    default = "Per-sample losses" + (" by class" if hue else "")
    ax.set_title(title if title is not None else default)
    return ax


def plot_confusion_matrix(
    pred: Tensor,
    target: Tensor,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    r"""A seaborn heatmap of the confusion matrix, rows normalised to recall by default.

    With ``normalize=True`` each row sums to 1, so the diagonal shows each class's
    recall and a minority class is as visible as the majority. Labels may live on
    any device; they are counted there and drawn from the CPU.

    Args:
        pred: predicted class labels, shape ``(N,)``.
        target: true class labels, shape ``(N,)``.
        num_classes: :math:`C`. Default: ``None``, inferred from the labels.
        class_names: a name per class for the axes. Default: the indices.
        normalize: divide each row by its count. Default: ``True``.
        ax: an Axes to draw on. Default: a new figure.
        title: the title. Default: one that says what is drawn.

    Example:
        >>> ax = plot_confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        >>> ax.get_xlabel(), ax.get_ylabel()
        ('predicted class', 'true class')
    """
    import seaborn as sns

    if not isinstance(normalize, bool):
        raise TypeError(f"`normalize` must be a bool, got {describe(normalize)}")
    cm = confusion_matrix(pred, target, num_classes).cpu()
    c = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"`class_names` must name {c} classes, got {len(names)}")
    values = cm.double()
    if normalize:
        values = values / values.sum(1, keepdim=True).clamp_min(1)
    ax = _new_axes(ax)
    with book_style():
        sns.heatmap(
            values.numpy(),
            annot=True,
            fmt=".2f" if normalize else ".0f",
            cmap="Blues",
            vmin=0,
            vmax=1 if normalize else None,
            xticklabels=names,
            yticklabels=names,
            cbar=False,
            square=True,
            ax=ax,
            annot_kws={"fontsize": "small"},
        )
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    default = "Confusion matrix (rows: recall)" if normalize else "Confusion matrix"
    ax.set_title(title if title is not None else default)
    return ax


def plot_precision_recall(
    curves: Mapping[str, tuple[Tensor, Tensor]],
    *,
    ax: Axes | None = None,
    title: str | None = None,
    legend_loc: str = "best",
) -> Axes:
    r"""Precision-recall curves of several models on one plot, with their average precision.

    Args:
        curves: maps a model's name to ``(scores, target)`` (see
            :func:`precision_recall_curve`); tensors may live on any device.
        ax: an Axes to draw on. Default: a new figure.
        title: the title. Default: ``"Precision-recall curves"``.
        legend_loc: where matplotlib puts the legend. Default: ``"best"`` (the
            corner that covers the fewest points).

    Example:
        >>> target = torch.tensor([1, 0, 1, 0, 0])
        >>> ax = plot_precision_recall({"model": (torch.rand(5), target)})
        >>> ax.get_xlabel()
        'recall'
    """
    if not isinstance(curves, Mapping) or not curves:
        raise TypeError(f"`curves` must map names to (scores, target), got {describe(curves)}")
    ax = _new_axes(ax)
    base_rate = 0.0
    for name, pair in curves.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"`curves[{name!r}]` must be a pair (scores, target), got {describe(pair)}"
            )
        scores, target = pair
        curve = {k: v.detach().cpu() for k, v in precision_recall_curve(scores, target).items()}
        recall = torch.cat([curve["recall"].new_zeros(1), curve["recall"]])
        precision = torch.cat([curve["precision"][:1], curve["precision"]])
        label = f"{name} (AP {float(curve['average_precision']):.3f})"
        ax.step(recall.numpy(), precision.numpy(), where="post", label=label)
        base_rate = float((target == 1).float().mean())
    ax.axhline(
        base_rate, color="grey", linestyle=":", label=f"chance (positive rate {base_rate:.3f})"
    )
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02))
    ax.set_title(title if title is not None else "Precision-recall curves")
    ax.legend(fontsize="small", loc=cast(Any, legend_loc))
    return ax


# --------------------------------------------------------------- the multi-objective view


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


def _check_labels(labels: Any, count: int) -> list[str]:
    """One text per point from a sequence, a 1-D tensor or a 1-D NumPy array."""
    import numpy as np

    if isinstance(labels, (Tensor, np.ndarray)):
        shape = tuple(labels.shape)
        if len(shape) != 1:
            raise ValueError(f"`labels` must be 1-D, one label per point, got shape {shape}")
        labels = labels.tolist()  # plain numbers: 0.25, not tensor(0.2500)
    elif isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(
            "`labels` must be a sequence, a 1-D tensor or a 1-D array with one label per "
            f"point, got {describe(labels)}"
        )
    if len(labels) != count:
        raise ValueError(f"`labels` must have one entry per point ({count}), got {len(labels)}")
    return [str(label) for label in labels]


def plot_pareto_front(
    points: Any,
    *,
    labels: Sequence[Any] | Tensor | np.ndarray | None = None,
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
            weights): a sequence, a 1-D tensor or a 1-D NumPy array. Default: ``None``
            (no labels).
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
    texts = None if labels is None else _check_labels(labels, len(values))
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
    for label, (x, y) in zip(texts or [], values.tolist()):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 6), fontsize="small")
    ax.set(xlabel=str(names[0]), ylabel=str(names[1]))
    ax.set_title(title if title is not None else "Pareto front")
    return ax
