r"""Metrics that stay honest under class imbalance.

Every function takes class labels (or scores) as tensors on any device and
returns tensors on that device; the figures that show them live in
:mod:`multiloss_helpers.plotting`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._validation import check_int, check_labels, describe

__all__ = [
    "balanced_accuracy",
    "confusion_matrix",
    "per_class_precision",
    "per_class_recall",
    "precision_recall_curve",
]

#: The largest confusion matrix the metrics build (entries); a stray label such as
#: 50_000_000 would otherwise ask for billions of counters.
MAX_CONFUSION_ENTRIES = 10**8


def _check_label_tensor(value: Any, name: str) -> Tensor:
    """1-D integer labels (the shared rule), with a hint for the usual slip: logits."""
    if isinstance(value, Tensor) and value.is_floating_point():
        raise TypeError(
            f"`{name}` must hold integer class labels, got {value.dtype}; "
            "for logits pass `logits.argmax(1)`"
        )
    return check_labels(value, name, dim=1)


def _labels(pred: Any, target: Any, num_classes: Any) -> tuple[Tensor, Tensor, int]:
    """Checked integer labels and the number of classes."""
    pred = _check_label_tensor(pred, "pred")
    target = _check_label_tensor(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            "`pred` and `target` must have the same shape, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(
            f"`pred` and `target` must be on one device, got {pred.device} and {target.device}"
        )
    if pred.numel() == 0:
        raise ValueError("`pred` and `target` are empty")
    # Metrics are read once per evaluation, not per training step: one sync is fine here.
    low, top = torch.stack(
        [torch.minimum(pred.min(), target.min()), torch.maximum(pred.max(), target.max())]
    ).tolist()
    if low < 0:
        raise ValueError(f"class labels must be >= 0, got a label {low}")
    if num_classes is None:
        num_classes = top + 1
        what = f"the largest label is {top}, so C = {num_classes}"
    else:
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        if top >= num_classes:
            raise ValueError(f"a label {top} is >= `num_classes` ({num_classes})")
        what = f"`num_classes` is {num_classes}"
    if num_classes * num_classes > MAX_CONFUSION_ENTRIES:
        raise ValueError(
            f"a {num_classes} x {num_classes} confusion matrix is too large ({what}); "
            "is a label out of range?"
        )
    return pred.long(), target.long(), num_classes


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Counts of (true class, predicted class) pairs: row = truth, column = prediction.

    Args:
        pred: predicted class labels, shape ``(N,)``.
        target: true class labels, shape ``(N,)``, on ``pred``'s device.
        num_classes: :math:`C`. Default: ``None``, inferred from the largest label.

    Returns:
        An int64 tensor of shape ``(C, C)`` on the labels' device.

    Raises:
        TypeError: the labels are not 1-D integer tensors (bool and float included).
        ValueError: shapes or devices differ, a label is negative or ``>= num_classes``,
            or :math:`C^2` exceeds ``MAX_CONFUSION_ENTRIES``.

    Example:
        >>> confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        tensor([[2, 1],
                [0, 1]])
    """
    pred, target, c = _labels(pred, target, num_classes)
    return torch.bincount(target * c + pred, minlength=c * c).reshape(c, c)


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """Counts divided in float32 (exact for counts below 2**24; no float64 for MPS)."""
    return numerator.float() / denominator.float()


def per_class_recall(pred: Tensor, target: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Recall of each class, TP / (TP + FN): the share of each class that is found.

    A class with no sample gets NaN. Arguments as for :func:`confusion_matrix`.

    Example:
        >>> per_class_recall(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        tensor([0.6667, 1.0000])
    """
    cm = confusion_matrix(pred, target, num_classes)
    return _ratio(cm.diagonal(), cm.sum(1))


def per_class_precision(pred: Tensor, target: Tensor, num_classes: int | None = None) -> Tensor:
    r"""Precision of each class, TP / (TP + FP): how often a prediction of it is right.

    A class that is never predicted gets NaN. Arguments as for :func:`confusion_matrix`.

    Example:
        >>> per_class_precision(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]))
        tensor([1.0000, 0.5000])
    """
    cm = confusion_matrix(pred, target, num_classes)
    return _ratio(cm.diagonal(), cm.sum(0))


def balanced_accuracy(pred: Tensor, target: Tensor, num_classes: int | None = None) -> float:
    r"""The mean of the per-class recalls over the classes present in ``target``.

    .. math::
        \text{BA} = \frac{1}{|\{c : n_c > 0\}|} \sum_{c : n_c > 0} \frac{TP_c}{n_c}

    Unlike accuracy, a classifier that always predicts the majority class scores
    :math:`1 / C` here, whatever the imbalance (Brodersen et al. 2010, "The balanced
    accuracy and its posterior distribution"). Arguments as for :func:`confusion_matrix`.

    Example:
        >>> balanced_accuracy(torch.zeros(100, dtype=torch.long), torch.tensor([0] * 95 + [1] * 5))
        0.5
    """
    recall = per_class_recall(pred, target, num_classes)
    return float(recall[~recall.isnan()].mean())


def _check_scores(scores: Any, target: Any) -> Tensor:
    """Checked binary labels as a bool tensor; scores must be finite floats."""
    if not isinstance(scores, Tensor) or scores.dim() != 1 or not scores.is_floating_point():
        raise TypeError(f"`scores` must be a 1-D floating-point tensor, got {describe(scores)}")
    if not isinstance(target, Tensor):
        raise TypeError(f"`target` must be a tensor of 0/1 labels, got {describe(target)}")
    if target.shape != scores.shape:
        raise ValueError(
            f"`target` must have the scores' shape {tuple(scores.shape)}, got {tuple(target.shape)}"
        )
    if target.device != scores.device:
        raise ValueError(
            f"`scores` and `target` must be on one device, got {scores.device} and {target.device}"
        )
    finite, binary, n_pos = torch.stack(
        [
            torch.isfinite(scores).all(),
            ((target == 0) | (target == 1)).all(),
            (target == 1).sum(),
        ]
    ).tolist()
    if not finite:
        raise ValueError(
            "`scores` must be finite: a NaN or inf score has no place in a ranking "
            "(check the model's outputs)"
        )
    if not binary:
        raise ValueError("`target` must hold binary labels 0 and 1")
    if n_pos == 0:
        raise ValueError("`target` has no positive sample, so recall is undefined")
    return target == 1


def precision_recall_curve(scores: Tensor, target: Tensor) -> dict[str, Tensor]:
    r"""Precision and recall of the positive class at every score threshold.

    Samples are ranked by score; at the k-th threshold the top k count as
    positive. Average precision is the step integral of the curve (as
    scikit-learn computes it):

    .. math::
        \text{AP} = \sum_k (R_k - R_{k-1})\, P_k

    Args:
        scores: a finite score per sample, higher meaning more positive (a logit or
            a probability), shape ``(N,)``, any floating dtype.
        target: binary labels (0 or 1, any dtype), shape ``(N,)``, on the scores' device.

    Returns:
        ``{"precision", "recall", "thresholds"}`` tensors, one entry per distinct
        score (descending thresholds), and ``"average_precision"`` as a 0-d tensor;
        precision, recall and AP are float32, thresholds keep the scores' dtype.

    Raises:
        TypeError: ``scores`` is not a 1-D floating tensor, or ``target`` is not a tensor.
        ValueError: shapes or devices differ, a score is NaN or infinite, a label is
            not 0 or 1, or there is no positive sample.

    Example:
        >>> scores, target = torch.tensor([0.9, 0.8, 0.3, 0.1]), torch.tensor([1, 0, 1, 0])
        >>> curve = precision_recall_curve(scores, target)
        >>> curve["precision"], curve["recall"]
        (tensor([1.0000, 0.5000, 0.6667, 0.5000]), tensor([0.5000, 0.5000, 1.0000, 1.0000]))
        >>> round(float(curve["average_precision"]), 4)
        0.8333
    """
    positive = _check_scores(scores, target)
    order = torch.argsort(scores.detach(), descending=True, stable=True)
    sorted_scores = scores.detach()[order]
    hits = positive[order].long()
    tp = hits.cumsum(0)  # integer counts: exact on every device, no float64 needed
    fp = (1 - hits).cumsum(0)
    # keep the last index of each run of equal scores: ties are decided together
    last = torch.ones_like(sorted_scores, dtype=torch.bool)
    last[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    tp, fp, thresholds = tp[last], fp[last], sorted_scores[last]
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp[-1:])
    previous = torch.cat([recall.new_zeros(1), recall[:-1]])
    average_precision = ((recall - previous) * precision).sum()
    return {
        "precision": precision,
        "recall": recall,
        "thresholds": thresholds,
        "average_precision": average_precision,
    }
