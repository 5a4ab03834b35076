"""Class weights for imbalanced data, and per-sample weights for resampling."""

from __future__ import annotations

import torch
from torch import Tensor

from ._validation import check_float, check_int, describe

__all__ = ["class_weights", "sample_weights"]

_METHODS = ("balanced", "inverse", "effective")


def class_weights(
    target: Tensor,
    num_classes: int | None = None,
    *,
    method: str = "balanced",
    beta: float = 0.999,
) -> Tensor:
    """Per-class weights from the class counts of ``target``, for ``weight=`` in a loss.

    With :math:`n` samples, :math:`C` classes and :math:`n_c` samples of class :math:`c`:

    .. math::

        w_c^{\\text{balanced}} = \\frac{n}{C\\, n_c}, \\qquad
        w_c^{\\text{inverse}} \\propto \\frac{1}{n_c}, \\qquad
        w_c^{\\text{effective}} \\propto \\frac{1 - \\beta}{1 - \\beta^{n_c}}

    ``"balanced"`` equals scikit-learn's ``compute_class_weight("balanced")``: each
    class then carries the same total weight :math:`n / C`. ``"inverse"`` and
    ``"effective"`` are rescaled so that the weights sum to :math:`C`.
    ``"effective"`` uses the effective number of samples of Cui et al. 2019,
    "Class-Balanced Loss Based on Effective Number of Samples",
    `arXiv:1901.05555 <https://arxiv.org/abs/1901.05555>`_: as :math:`\\beta \\to 0`
    all weights become equal, as :math:`\\beta \\to 1` they approach ``"inverse"``.

    Args:
        target: integer class labels of any shape (flattened).
        num_classes: :math:`C`; inferred as ``max(target) + 1`` when omitted.
        method: ``"balanced"``, ``"inverse"`` or ``"effective"``.
        beta: :math:`\\beta \\in [0, 1)` for ``"effective"``.

    Returns:
        A float32 tensor of length :math:`C` on the target's device.

    Raises:
        ValueError: when a class has no sample (its weight would be infinite); the
            message names the class.

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
    low, high = torch.aminmax(flat)
    if int(low) < 0:
        raise ValueError(f"`target` holds a negative class label ({int(low)})")
    if num_classes is None:
        num_classes = int(high) + 1
    else:
        num_classes = check_int(num_classes, "num_classes", minimum=1)
        if int(high) >= num_classes:
            raise ValueError(
                f"`target` holds class {int(high)}, but `num_classes` is {num_classes}"
            )
    counts = torch.bincount(flat, minlength=num_classes).to(torch.float32)
    empty = (counts == 0).nonzero().flatten()
    if len(empty):
        raise ValueError(
            f"class {int(empty[0])} has no sample in `target`, so its weight would be "
            f"infinite; pass the right `num_classes` or drop the class (empty classes: "
            f"{empty.tolist()})"
        )
    if method == "balanced":
        return flat.numel() / (num_classes * counts)
    if method == "inverse":
        weights = 1.0 / counts
    else:
        weights = (1.0 - beta) / (
            1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts.double())
        ).float()
    return weights * (num_classes / weights.sum())


def sample_weights(target: Tensor, class_weights: Tensor) -> Tensor:
    """One weight per sample, its class's weight: for ``WeightedRandomSampler``.

    Drawing samples with probability proportional to these weights (with
    replacement) makes every class equally likely per draw when the class
    weights are inverse frequencies (``"balanced"`` or ``"inverse"``).

    Args:
        target: integer class labels, shape ``(N,)``.
        class_weights: one weight per class, shape ``(C,)``.

    Returns:
        A tensor of shape ``(N,)``.

    Example:
        >>> target = torch.tensor([0, 0, 0, 1])
        >>> sample_weights(target, class_weights(target))
        tensor([0.6667, 0.6667, 0.6667, 2.0000])
    """
    if not isinstance(target, Tensor) or target.dtype.is_floating_point or target.dim() != 1:
        raise TypeError(
            f"`target` must be a 1-D integer tensor of class labels, got {describe(target)}"
        )
    if not isinstance(class_weights, Tensor) or class_weights.dim() != 1:
        raise TypeError(f"`class_weights` must be a 1-D tensor, got {describe(class_weights)}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= len(class_weights)):
        raise ValueError(
            f"`target` labels must lie in [0, {len(class_weights)}) to index `class_weights`"
        )
    return class_weights.to(target.device)[target]
