r"""Class-imbalance weights: per-class weights for a loss, per-sample weights for resampling.

Not to be confused with :mod:`multiloss_helpers.weighting`, which weights *tasks* (losses)
against each other. Both functions run once per dataset, not per training step, so their
value checks may read values back from an accelerator. Everything is computed in float32
(float64 is missing on some accelerators, e.g. MPS).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._validation import check_float, check_int, check_same_device, describe

__all__ = ["class_weights", "sample_weights"]

_METHODS = ("balanced", "inverse", "effective")


def class_weights(
    target: Tensor,
    num_classes: int | None = None,
    *,
    method: str = "balanced",
    beta: float = 0.999,
) -> Tensor:
    r"""Per-class weights from the class counts of ``target``, for ``weight=`` in a loss.

    With :math:`n` samples, :math:`C` classes and :math:`n_c` samples of class :math:`c`:

    .. math::

        w_c^{\text{balanced}} = \frac{n}{C\, n_c}, \qquad
        w_c^{\text{inverse}} \propto \frac{1}{n_c}, \qquad
        w_c^{\text{effective}} \propto \frac{1 - \beta}{1 - \beta^{n_c}}

    ``"balanced"`` equals scikit-learn's ``compute_class_weight("balanced")``: each
    class then carries the same total weight :math:`n / C`. ``"inverse"`` and
    ``"effective"`` are rescaled so that the weights sum to :math:`C`.
    ``"effective"`` uses the effective number of samples of Cui et al. 2019,
    "Class-Balanced Loss Based on Effective Number of Samples",
    `arXiv:1901.05555 <https://arxiv.org/abs/1901.05555>`_: as :math:`\beta \to 0`
    all weights become equal, as :math:`\beta \to 1` they approach ``"inverse"``.

    Args:
        target: integer class labels of any shape (flattened); not bool.
        num_classes: :math:`C`, at most the number of labels (a class without a
            sample has no finite weight). Default: ``None``, inferred as
            ``max(target) + 1``.
        method: ``"balanced"``, ``"inverse"`` or ``"effective"``. Default: ``"balanced"``.
        beta: :math:`\beta \in [0, 1)` for ``"effective"``. Default: ``0.999``.

    Returns:
        A float32 tensor of length :math:`C` on the target's device.

    Raises:
        ValueError: when a class has no sample (its weight would be infinite); the
            message names the class. A label so large that some class must be empty
            (``C`` above the number of labels) is refused before anything is counted.

    Example:
        >>> target = torch.tensor([0, 0, 0, 1])
        >>> class_weights(target)
        tensor([0.6667, 2.0000])
        >>> class_weights(target, method="inverse")
        tensor([0.5000, 1.5000])
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"`target` must be a tensor of class labels, got {describe(target)}")
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"`target` must hold integer class labels, got {target.dtype}")
    if target.numel() == 0:
        raise ValueError("`target` is empty")
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}, got {method!r}")
    beta = check_float(beta, "beta", minimum=0.0, maximum=1.0, open_maximum=True)
    flat = target.reshape(-1)
    low, high = (int(v) for v in torch.aminmax(flat))
    if low < 0:
        raise ValueError(f"`target` holds a negative class label ({low})")
    n = flat.numel()
    if num_classes is None:
        num_classes = high + 1
    else:
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        if high >= num_classes:
            raise ValueError(f"`target` holds class {high}, but `num_classes` is {num_classes}")
    if num_classes > n:  # some class must be empty: say which without counting C classes
        present = torch.unique(flat)  # sorted, at most n values
        gaps = (present != torch.arange(len(present), device=present.device)).nonzero()
        first = int(gaps[0]) if len(gaps) else len(present)
        raise ValueError(
            f"class {first} has no sample in `target`, so its weight would be infinite: "
            f"{num_classes} classes (largest label {high}) but only {n} labels; pass the "
            "right `num_classes` or fix the label"
        )
    counts = torch.bincount(flat, minlength=num_classes).to(torch.float32)
    empty = (counts == 0).nonzero().flatten()
    if len(empty):
        shown = ", ".join(str(c) for c in empty[:10].tolist())
        more = f" and {len(empty) - 10} more" if len(empty) > 10 else ""
        raise ValueError(
            f"class {int(empty[0])} has no sample in `target`, so its weight would be "
            f"infinite; pass the right `num_classes` or drop the class (empty classes: "
            f"{shown}{more})"
        )
    if method == "balanced":
        return n / (num_classes * counts)
    if method == "inverse":
        weights = 1.0 / counts
    else:  # 1 - beta ** n = -expm1(n log beta), accurate in float32 even for beta near 1
        log_beta = math.log(beta) if beta > 0 else -math.inf
        weights = (1.0 - beta) / -torch.expm1(counts * log_beta)
    return weights * (num_classes / weights.sum())


def sample_weights(target: Tensor, class_weights: Tensor) -> Tensor:
    r"""One weight per sample, its class's weight: for ``WeightedRandomSampler``.

    Drawing samples with probability proportional to these weights (with
    replacement) makes every class equally likely per draw when the class
    weights are inverse frequencies (``"balanced"`` or ``"inverse"``).

    Args:
        target: integer class labels, shape ``(N,)``; not bool (a bool tensor would
            index as a mask).
        class_weights: one non-negative, finite weight per class, shape ``(C,)``, on
            the target's device.

    Returns:
        A tensor of shape ``(N,)`` with the class weights' dtype.

    Example:
        >>> target = torch.tensor([0, 0, 0, 1])
        >>> sample_weights(target, class_weights(target))
        tensor([0.6667, 0.6667, 0.6667, 2.0000])
    """
    if (
        not isinstance(target, Tensor)
        or target.dtype.is_floating_point
        or target.dtype == torch.bool
        or target.is_complex()
    ):
        raise TypeError(
            f"`target` must be a 1-D integer tensor of class labels, got {describe(target)}"
        )
    if target.dim() != 1:  # the right type, the wrong shape
        raise ValueError(
            f"`target` must be 1-D, one label per sample, got shape {tuple(target.shape)}"
        )
    if not isinstance(class_weights, Tensor) or not class_weights.is_floating_point():
        raise TypeError(
            f"`class_weights` must be a 1-D floating-point tensor, got {describe(class_weights)}"
        )
    if class_weights.dim() != 1:
        raise ValueError(
            f"`class_weights` must be 1-D, one weight per class, got shape "
            f"{tuple(class_weights.shape)}"
        )
    check_same_device(class_weights, "class_weights", target, "target")
    if class_weights.numel() and not bool(
        ((class_weights >= 0) & torch.isfinite(class_weights)).all()
    ):
        raise ValueError(
            f"`class_weights` must be non-negative and finite, got {class_weights.tolist()[:10]}"
        )
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= len(class_weights)):
        raise ValueError(
            f"`target` labels must lie in [0, {len(class_weights)}) to index `class_weights`"
        )
    return class_weights[target.long()]  # uint8 would index as a mask, int8/int16 not at all
