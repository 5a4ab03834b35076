"""The book's figures: loss curves per component and per-sample loss distributions.

Figures use an opaque white background with dark text, so they stay readable
when the rendered book is switched to a dark theme, and a colour-blind-safe
palette. Every function draws on an ``Axes`` (a new one by default) and
returns it, so a reader can add to the figure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ._validation import check_int, describe
from .history import SPLITS, LossHistory

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["book_style", "plot_history", "plot_loss_distribution", "use_book_style"]

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


def _theme_rc() -> dict[str, Any]:
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
    """Apply the book's figure style to matplotlib for the rest of the session.

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
    """The book's figure style inside a ``with`` block only.

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
    """Plot loss curves: one colour per component, solid for train, dashed for validation.

    Args:
        history: the :class:`LossHistory` returned by :func:`fit`.
        components: which components to draw; all logged ones by default.
        level: ``"epoch"`` (per-epoch means, train and validation) or ``"step"``
            (every training step; validation is per epoch only).
        splits: which of ``"train"`` and ``"val"`` to draw at epoch level.
        smooth: at step level, a moving-average window in steps that is drawn
            over the raw (faint) curve.
        logy: log scale for the loss axis, for components of different scales.
        ax: an Axes to draw on; a new figure by default.
        title: the title; a default says what is drawn.

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

    import seaborn as sns

    ax = _new_axes(ax)
    colours = sns.color_palette("colorblind", len(components))
    for colour, name in zip(colours, components):
        if level == "step":
            values = history.steps(name)
            steps = list(range(len(values)))
            window = min(smooth or 1, len(values))
            if window > 1:
                ax.plot(steps, values, color=colour, alpha=0.25, linewidth=1)
                kernel = torch.ones(window) / window
                series = torch.tensor(values, dtype=torch.float64)
                avg = torch.nn.functional.conv1d(
                    series.view(1, 1, -1), kernel.double().view(1, 1, -1)
                ).flatten()
                ax.plot(
                    steps[window - 1 :],
                    avg.tolist(),
                    color=colour,
                    label=f"{name} (train, {window}-step mean)",
                )
            else:
                ax.plot(steps, values, color=colour, label=f"{name} (train)")
            ax.set_xlabel("training step")
        else:
            for split in splits:
                values = history.epochs(name, split=split)
                if not values:
                    continue
                style = "-" if split == "train" else "--"
                ax.plot(
                    range(1, len(values) + 1),
                    values,
                    linestyle=style,
                    marker="o" if len(values) <= 30 else None,
                    markersize=3,
                    color=colour,
                    label=f"{name} ({split})",
                )
            ax.set_xlabel("epoch")
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
    """Plot the distribution of per-sample losses, optionally one curve per class.

    Per-sample losses come from a loss called with ``reduction="none"``; a
    mean-reduced loss is one number and has no distribution, so a 0-d input is
    refused with a message saying so.

    Args:
        losses: one loss per sample, shape ``(N,)``.
        labels: one class label per sample, to split the distribution by class.
        kind: ``"hist"`` (seaborn ``histplot``, density per class so that small
            classes stay visible) or ``"ecdf"`` (seaborn ``ecdfplot``: the share
            of samples with loss at most x).
        class_names: names for the classes ``0 .. C-1`` in the legend.
        log_scale: log scale for the loss axis (losses often span decades).
        bins: the histogram's bins (``kind="hist"`` only).
        ax: an Axes to draw on; a new figure by default.
        title: the title; a default says what is drawn.

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
    import numpy as np
    import pandas as pd
    import seaborn as sns

    if kind not in ("hist", "ecdf"):
        raise ValueError(f"`kind` must be 'hist' or 'ecdf', got {kind!r}")
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
    if not np.issubdtype(values.dtype, np.number):
        raise TypeError(f"`losses` must hold numbers, got dtype {values.dtype}")
    if log_scale and (values <= 0).any():
        raise ValueError("`log_scale=True` needs strictly positive losses; some are <= 0")
    frame = pd.DataFrame({"per-sample loss": values})
    hue = None
    if labels is not None:
        label_values = _as_numpy(labels, "labels")
        if label_values.shape != values.shape:
            raise ValueError(
                f"`labels` must have one label per loss, shape {values.shape}, "
                f"got {label_values.shape}"
            )
        if not np.issubdtype(label_values.dtype, np.integer):
            raise TypeError(f"`labels` must hold integer classes, got dtype {label_values.dtype}")
        names = list(class_names) if class_names is not None else None
        if names is not None and len(names) <= int(label_values.max()):
            raise ValueError(
                f"`class_names` must name every class up to {int(label_values.max())}, "
                f"got {len(names)} names"
            )
        frame["class"] = [names[c] if names else str(c) for c in label_values]
        hue = "class"
    elif class_names is not None:
        raise ValueError("`class_names` needs `labels`")

    ax = _new_axes(ax)
    with book_style():
        order = None
        if hue and class_names is not None:
            present = set(frame["class"])
            order = [n for n in class_names if n in present]
        elif hue:
            order = [str(c) for c in sorted(set(label_values.tolist()))]
        if kind == "hist":
            sns.histplot(
                data=frame,
                x="per-sample loss",
                hue=hue,
                hue_order=order,
                stat="density",
                common_norm=False,
                element="step",
                bins=bins,
                log_scale=log_scale,
                palette="colorblind" if hue else None,
                ax=ax,
            )
        else:
            sns.ecdfplot(
                data=frame,
                x="per-sample loss",
                hue=hue,
                hue_order=order,
                log_scale=log_scale,
                palette="colorblind" if hue else None,
                ax=ax,
            )
            ax.set_ylabel("share of samples with loss <= x")
    ax.set_xlabel("per-sample loss")
    default = "Per-sample losses" + (" by class" if hue else "")
    ax.set_title(title if title is not None else default)
    return ax
