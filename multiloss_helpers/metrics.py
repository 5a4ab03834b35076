"""Metrics that stay honest under class imbalance, and their plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ._validation import check_int, describe

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = [
    "balanced_accuracy",
    "confusion_matrix",
    "per_class_precision",
    "per_class_recall",
    "plot_confusion_matrix",
    "plot_precision_recall",
    "precision_recall_curve",
]


def _labels(pred: Any, target: Any, num_classes: int | None) -> tuple[Tensor, Tensor, int]:
    for name, value in (("pred", pred), ("target", target)):
        if not isinstance(value, Tensor) or value.dtype.is_floating_point or value.dim() != 1:
            raise TypeError(
                f"`{name}` must be a 1-D integer tensor of class labels, got {describe(value)}; "
                "for logits pass `logits.argmax(1)`"
            )
    if pred.shape != target.shape:
        raise ValueError(
            f"`pred` and `target` must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.numel() == 0:
        raise ValueError("`pred` and `target` are empty")
    top = int(torch.maximum(pred.max(), target.max()))
    if int(torch.minimum(pred.min(), target.min())) < 0:
        raise ValueError("class labels must be >= 0")
    if num_classes is None:
        num_classes = top + 1
    else:
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        if top >= num_classes:
            raise ValueError(f"a label {top} is >= `num_classes` ({num_classes})")
    return pred.long(), target.long(), num_classes


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int | None = None) -> Tensor:
    """Counts of (true class, predicted class) pairs: row = truth, column = prediction.

    Args:
        pred: predicted class labels, shape ``(N,)``.
        target: true class labels, shape ``(N,)``.
        num_classes: :math:`C`; inferred from the labels when omitted.

    Returns:
        An int64 tensor of shape ``(C, C)``.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        tensor([[2, 1],
                [0, 1]])
    """
    pred, target, c = _labels(pred, target, num_classes)
    return torch.bincount(target * c + pred, minlength=c * c).reshape(c, c)


def per_class_recall(pred: Tensor, target: Tensor, num_classes: int | None = None) -> Tensor:
    """Recall of each class, TP / (TP + FN): the share of each class that is found.

    A class with no sample gets NaN.

    Example:
        >>> per_class_recall(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        tensor([0.6667, 1.0000])
    """
    cm = confusion_matrix(pred, target, num_classes).double()
    return (cm.diagonal() / cm.sum(1)).float()


def per_class_precision(pred: Tensor, target: Tensor, num_classes: int | None = None) -> Tensor:
    """Precision of each class, TP / (TP + FP): how often a prediction of it is right.

    A class that is never predicted gets NaN.

    Example:
        >>> per_class_precision(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        tensor([1.0000, 0.5000])
    """
    cm = confusion_matrix(pred, target, num_classes).double()
    return (cm.diagonal() / cm.sum(0)).float()


def balanced_accuracy(pred: Tensor, target: Tensor, num_classes: int | None = None) -> float:
    """The mean of the per-class recalls over the classes present in ``target``.

    Unlike accuracy, a classifier that always predicts the majority class scores
    :math:`1 / C` here, whatever the imbalance (Brodersen et al. 2010).

    Example:
        >>> balanced_accuracy(torch.zeros(100, dtype=torch.long), torch.tensor([0] * 95 + [1] * 5))
        0.5
    """
    recall = per_class_recall(pred, target, num_classes)
    return float(recall[~recall.isnan()].mean())


def precision_recall_curve(scores: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Precision and recall of the positive class at every score threshold.

    Samples are ranked by score; at the k-th threshold the top k count as
    positive. Average precision is :math:`\\sum_k (R_k - R_{k-1}) P_k`, the step
    integral of the curve (as scikit-learn computes it).

    Args:
        scores: a score per sample, higher meaning more positive (a logit or a
            probability), shape ``(N,)``.
        target: binary labels (0 or 1), shape ``(N,)``.

    Returns:
        ``{"precision", "recall", "thresholds"}`` tensors, one entry per distinct
        score (descending thresholds), and ``"average_precision"`` as a 0-d tensor.

    Example:
        >>> curve = precision_recall_curve(torch.tensor([0.9, 0.8, 0.3, 0.1]), torch.tensor([1, 0, 1, 0]))
        >>> curve["precision"], curve["recall"]
        (tensor([1.0000, 0.5000, 0.6667, 0.5000]), tensor([0.5000, 0.5000, 1.0000, 1.0000]))
        >>> round(float(curve["average_precision"]), 4)
        0.8333
    """
    if not isinstance(scores, Tensor) or scores.dim() != 1 or not scores.is_floating_point():
        raise TypeError(f"`scores` must be a 1-D floating-point tensor, got {describe(scores)}")
    if not isinstance(target, Tensor) or target.shape != scores.shape:
        raise ValueError(
            f"`target` must be a tensor of the scores' shape {tuple(scores.shape)}, got {describe(target)}"
        )
    positive = target.to(torch.float64)
    if bool(((positive != 0) & (positive != 1)).any()):
        raise ValueError("`target` must hold binary labels 0 and 1")
    total_positive = positive.sum()
    if total_positive == 0:
        raise ValueError("`target` has no positive sample, so recall is undefined")
    order = torch.argsort(scores.detach(), descending=True, stable=True)
    sorted_scores = scores.detach()[order]
    tp = positive[order].cumsum(0)
    fp = (1 - positive[order]).cumsum(0)
    # keep the last index of each run of equal scores: ties are decided together
    last = torch.ones_like(sorted_scores, dtype=torch.bool)
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    tp, fp, thresholds = tp[last], fp[last], sorted_scores[last]
    precision = tp / (tp + fp)
    recall = tp / total_positive
    previous = torch.cat([recall.new_zeros(1), recall[:-1]])
    average_precision = ((recall - previous) * precision).sum()
    return {
        "precision": precision.float(),
        "recall": recall.float(),
        "thresholds": thresholds,
        "average_precision": average_precision.float(),
    }


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
    """A seaborn heatmap of the confusion matrix, rows normalised to recall by default.

    With ``normalize=True`` each row sums to 1, so the diagonal shows each class's
    recall and a minority class is as visible as the majority.

    Example:
        >>> ax = plot_confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        >>> ax.get_xlabel(), ax.get_ylabel()
        ('predicted class', 'true class')
    """
    import seaborn as sns

    from .plotting import _new_axes, book_style

    cm = confusion_matrix(pred, target, num_classes)
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
            fmt=".2f" if normalize else "d",
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
    ax.set_title(
        title
        if title is not None
        else ("Confusion matrix (rows: recall)" if normalize else "Confusion matrix")
    )
    return ax


def plot_precision_recall(
    curves: Mapping[str, tuple[Tensor, Tensor]],
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Precision-recall curves of several models on one plot, with their average precision.

    Args:
        curves: maps a model's name to ``(scores, target)``.
        ax: an Axes to draw on; a new figure by default.
        title: the title.

    Example:
        >>> target = torch.tensor([1, 0, 1, 0, 0])
        >>> ax = plot_precision_recall({"model": (torch.rand(5), target)})
        >>> ax.get_xlabel()
        'recall'
    """
    from .plotting import _new_axes

    if not isinstance(curves, Mapping) or not curves:
        raise TypeError(f"`curves` must map names to (scores, target), got {describe(curves)}")
    ax = _new_axes(ax)
    base_rate = None
    for name, pair in curves.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(
                f"`curves[{name!r}]` must be a pair (scores, target), got {describe(pair)}"
            )
        scores, target = pair
        curve = precision_recall_curve(scores, target)
        recall = torch.cat([torch.zeros(1), curve["recall"]])
        precision = torch.cat([curve["precision"][:1], curve["precision"]])
        ax.step(
            recall,
            precision,
            where="post",
            label=f"{name} (AP {float(curve['average_precision']):.3f})",
        )
        base_rate = float(target.double().mean())
    ax.axhline(
        base_rate, color="grey", linestyle=":", label=f"chance (positive rate {base_rate:.3f})"
    )
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02))
    ax.set_title(title if title is not None else "Precision-recall curves")
    ax.legend(fontsize="small")
    return ax
