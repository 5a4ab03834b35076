"""Focal losses, multi-class and binary, stable in value and gradient.

Both are computed by a custom ``torch.autograd.Function`` whose backward pass is
the analytic gradient written in terms of bounded quantities. The textbook form
``(1 - p_t) ** gamma * ce`` differentiated by autograd is not stable: for
``gamma < 1`` the derivative of the power is infinite where a sample is
classified with certainty (``p_t`` rounds to 1), and ``0 * inf`` gives NaN,
although the true gradient there is 0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import check_float, check_reduction, describe

__all__ = ["BinaryFocalLoss", "FocalLoss", "binary_focal_loss", "focal_loss"]


def _reduce(loss: Tensor, reduction: str, denominator: Tensor | None = None) -> Tensor:
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if denominator is None:
        return total / loss.numel() if loss.numel() else total * float("nan")
    return total / denominator


class _FocalFunction(torch.autograd.Function):
    """Per-sample multi-class focal loss on ``(M, C)`` logits with an analytic backward.

    Only the target class's log-probability is formed, as ``x_t - logsumexp(x)``: with
    few classes a full ``log_softmax`` costs several times more on the CPU. The
    softmax is built once, in place, in the backward pass.
    """

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, target: Tensor, sample_weight: Tensor | None, gamma: float
    ) -> Tensor:
        log_norm = torch.logsumexp(logits, dim=1)
        log_pt = logits.gather(1, target.unsqueeze(1)).squeeze(1) - log_norm
        one_minus_pt = -torch.expm1(log_pt)  # 1 - p_t without cancellation
        scale = one_minus_pt.pow(gamma)
        if sample_weight is not None:
            scale = scale * sample_weight
        ctx.gamma = gamma
        ctx.save_for_backward(logits, target, log_norm, log_pt, one_minus_pt, scale)
        return -scale * log_pt

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, None, None, None]:
        logits, target, log_norm, log_pt, one_minus_pt, scale = ctx.saved_tensors
        # dL/d(log p_t) = w (1 - p_t)^gamma (gamma p_t log(p_t) / (1 - p_t) - 1); the ratio
        # log(p_t) / (1 - p_t) tends to -1 as p_t -> 1, so every factor stays bounded.
        ratio = torch.where(one_minus_pt > 0, log_pt / one_minus_pt, -1.0)
        d_log_pt = torch.addcmul(
            torch.full_like(log_pt, -1.0), torch.exp(log_pt), ratio, value=ctx.gamma
        )
        d_log_pt.mul_(scale).mul_(grad_output)
        # d(log p_t)/dz = onehot(target) - softmax(z), the softmax formed in place
        grad = (logits - log_norm.unsqueeze(1)).exp_().mul_(-d_log_pt.unsqueeze(1))
        grad.scatter_add_(1, target.unsqueeze(1), d_log_pt.unsqueeze(1))
        return grad, None, None, None


def _check_focal_args(
    input: Any, target: Any, gamma: Any, weight: Any, ignore_index: Any, reduction: Any
) -> tuple[int, float]:
    if not isinstance(input, Tensor):
        raise TypeError(f"`input` must be a tensor of logits, got {describe(input)}")
    if not isinstance(target, Tensor):
        raise TypeError(f"`target` must be a tensor of class indices, got {describe(target)}")
    if not input.is_floating_point():
        raise TypeError(f"`input` must hold floating-point logits, got {input.dtype}")
    if input.dim() < 2:
        raise ValueError(
            f"`input` must have shape (N, C) or (N, C, d1, ...), got {tuple(input.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"`target` must hold integer class indices (torch.long), got {target.dtype}; "
            "for class probabilities use F.cross_entropy, for binary targets binary_focal_loss"
        )
    expected = (input.shape[0], *input.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"`target` must have shape {expected} for `input` of shape {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    gamma = check_float(gamma, "gamma", minimum=0.0)
    check_reduction(reduction)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"`ignore_index` must be an int, got {describe(ignore_index)}")
    num_classes = input.shape[1]
    if weight is not None:
        if not isinstance(weight, Tensor):
            raise TypeError(
                f"`weight` must be a tensor of per-class weights, got {describe(weight)}"
            )
        if weight.shape != (num_classes,):
            raise ValueError(
                f"`weight` must have one entry per class ({num_classes}), got shape {tuple(weight.shape)}"
            )
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        value = int(target[bad].flatten()[0])
        raise ValueError(
            f"`target` holds class index {value}, outside [0, {num_classes}) "
            f"(and not `ignore_index`={ignore_index})"
        )
    return num_classes, gamma


def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class focal loss on logits with class-index targets.

    .. math::

        \\ell_i = - w_{y_i} \\, (1 - p_{i, y_i})^{\\gamma} \\, \\log p_{i, y_i},
        \\qquad p_i = \\operatorname{softmax}(x_i)

    The factor :math:`(1 - p_t)^\\gamma` shrinks the loss of samples the model
    already classifies well, so training focuses on the hard ones (Lin et al.
    2017, "Focal Loss for Dense Object Detection",
    `arXiv:1708.02002 <https://arxiv.org/abs/1708.02002>`_). With ``gamma=0`` it
    *is* :func:`torch.nn.functional.cross_entropy` with the same ``weight``,
    ``ignore_index`` and ``reduction``; in particular ``"mean"`` divides by the
    summed weights of the non-ignored targets, as cross-entropy does. Per-class
    ``weight`` plays the role of the paper's :math:`\\alpha` for several classes.

    Values and gradients are finite for logits up to :math:`\\pm 10^4` in
    float32 and every ``gamma >= 0``: the target's log-probability is computed as
    ``x_t - logsumexp(x)`` and the gradient analytically (see the module's
    docstring). ``make bench`` compares its speed with the usual formulations.

    Args:
        input: logits, shape ``(N, C)`` or ``(N, C, d1, ...)``.
        target: class indices in ``[0, C)``, shape ``(N,)`` or ``(N, d1, ...)``.
        gamma: focusing parameter :math:`\\gamma \\ge 0`.
        weight: per-class weights :math:`w_c`, shape ``(C,)``.
        ignore_index: a target value that contributes neither loss nor gradient.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per element, 0 where ignored).

    Shape:
        - Input: ``(N, C)`` or ``(N, C, d1, ...)``.
        - Target: ``(N,)`` or ``(N, d1, ...)``, integer.
        - Output: scalar, or the target's shape for ``reduction="none"``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.5, 3.0]])
        >>> target = torch.tensor([0, 1])
        >>> focal_loss(logits, target, gamma=2.0)
        tensor(1.1306)
        >>> torch.equal(focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target))
        True
    """
    num_classes, gamma = _check_focal_args(input, target, gamma, weight, ignore_index, reduction)
    if gamma == 0.0:
        return F.cross_entropy(
            input, target, weight=weight, ignore_index=ignore_index, reduction=reduction
        )
    logits = input.movedim(1, -1).reshape(-1, num_classes)
    flat_target = target.reshape(-1)
    valid = flat_target != ignore_index
    if bool(valid.all()):  # the common case: no mask to apply
        safe_target = flat_target
        sample_weight = None if weight is None else weight.to(logits.dtype)[flat_target]
    else:
        safe_target = torch.where(valid, flat_target, torch.zeros_like(flat_target))
        sample_weight = valid.to(logits.dtype)
        if weight is not None:
            sample_weight = sample_weight * weight.to(logits.dtype)[safe_target]
    loss = _FocalFunction.apply(logits, safe_target, sample_weight, gamma)
    if reduction == "none":
        return loss.reshape(target.shape)
    if reduction == "mean" and sample_weight is None:
        return loss.mean()
    denominator = None if sample_weight is None else sample_weight.sum()
    return _reduce(loss, reduction, denominator=denominator)


class _BinaryFocalFunction(torch.autograd.Function):
    """Element-wise binary focal loss on logits with an analytic backward."""

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, target: Tensor, alpha: float | None, gamma: float
    ) -> Tensor:
        ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        sig = torch.sigmoid(logits)
        sig_neg = torch.sigmoid(-logits)
        # 1 - p_t = t * sigmoid(-x) + (1 - t) * sigmoid(x); lerp is exact at t = 0 and 1
        one_minus_pt = torch.lerp(sig, sig_neg, target)
        scale = one_minus_pt.pow(gamma)
        if alpha is not None:  # alpha_t = alpha t + (1 - alpha)(1 - t)
            scale.mul_(target * (2 * alpha - 1) + (1 - alpha))
        ctx.gamma = gamma
        ctx.save_for_backward(target, ce, sig, sig_neg, one_minus_pt, scale)
        return scale * ce

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, None, None, None]:
        target, ce, sig, sig_neg, one_minus_pt, scale = ctx.saved_tensors
        # d(1 - p_t)/dx = sig * sig_neg * (1 - 2t), and sig * sig_neg <= 1 - p_t, so the
        # ratio below lies in [-1, 1] and the gradient stays bounded for every gamma >= 0.
        ratio = (sig * sig_neg).mul_(1 - 2 * target).div_(one_minus_pt)
        ratio = torch.where(one_minus_pt > 0, ratio, 0.0)
        grad = torch.addcmul(sig - target, ratio, ce, value=ctx.gamma)
        return grad.mul_(scale).mul_(grad_output), None, None, None


def binary_focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Tensor:
    """Binary (and multi-label) focal loss on logits.

    .. math::

        \\ell = - \\alpha_t \\, (1 - p_t)^{\\gamma} \\log p_t, \\qquad
        p_t = p\\,y + (1 - p)(1 - y), \\quad
        \\alpha_t = \\alpha\\,y + (1 - \\alpha)(1 - y), \\quad p = \\sigma(x)

    ``alpha`` weights positives by :math:`\\alpha` and negatives by
    :math:`1 - \\alpha` (:math:`\\alpha_t`, as in Lin et al. 2017,
    `arXiv:1708.02002 <https://arxiv.org/abs/1708.02002>`_, and torchvision's
    ``sigmoid_focal_loss``): one constant factor for every sample would only
    rescale the loss. ``alpha=None`` turns the weighting off; with
    ``alpha=None, gamma=0`` the loss *is*
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`. Targets may be
    soft (any value in ``[0, 1]``). Values and gradients are finite for logits
    up to :math:`\\pm 10^4` in float32 and every ``gamma >= 0``.

    Args:
        input: logits of any shape.
        target: targets in ``[0, 1]`` of the input's shape.
        alpha: weight of the positive class in ``[0, 1]``, or ``None``.
        gamma: focusing parameter :math:`\\gamma \\ge 0`.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"``.

    Shape:
        - Input: ``(*)``; Target: ``(*)``, same shape.
        - Output: scalar, or ``(*)`` for ``reduction="none"``.

    Example:
        >>> logits = torch.tensor([3.0, -1.0, 0.5])
        >>> target = torch.tensor([1.0, 0.0, 0.0])
        >>> binary_focal_loss(logits, target, alpha=0.25, gamma=2.0)
        tensor(0.1000)
    """
    if not isinstance(input, Tensor) or not input.is_floating_point():
        raise TypeError(f"`input` must be a floating-point tensor of logits, got {describe(input)}")
    if not isinstance(target, Tensor):
        raise TypeError(f"`target` must be a tensor of the input's shape, got {describe(target)}")
    if target.shape != input.shape:
        raise ValueError(
            f"`target` must have the input's shape {tuple(input.shape)}, got {tuple(target.shape)}"
        )
    gamma = check_float(gamma, "gamma", minimum=0.0)
    if alpha is not None:
        alpha = check_float(alpha, "alpha", minimum=0.0, maximum=1.0)
    check_reduction(reduction)
    target = target.to(input.dtype)
    if target.numel() and bool(((target < 0) | (target > 1)).any()):
        raise ValueError("`target` values must lie in [0, 1]")
    if alpha is None and gamma == 0.0:
        return F.binary_cross_entropy_with_logits(input, target, reduction=reduction)
    loss = _BinaryFocalFunction.apply(input, target, alpha, gamma)
    return _reduce(loss, reduction)


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`: stores the hyperparameters, calls the function.

    ``weight`` is registered as a buffer, so it follows ``.to(device)`` and is saved
    in the ``state_dict``.

    Example:
        >>> criterion = FocalLoss(gamma=2.0, weight=torch.tensor([1.0, 4.0]))
        >>> criterion
        FocalLoss(gamma=2.0, weight=tensor([1., 4.]), ignore_index=-100, reduction='mean')
        >>> logits, target = torch.zeros(3, 2), torch.tensor([0, 1, 1])
        >>> torch.equal(criterion(logits, target), focal_loss(logits, target, weight=criterion.weight))
        True
    """

    weight: Tensor | None

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        weight: Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.gamma = check_float(gamma, "gamma", minimum=0.0)
        self.ignore_index = ignore_index
        self.reduction = check_reduction(reduction)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(
                f"`weight` must be a tensor of per-class weights, got {describe(weight)}"
            )
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """See :func:`focal_loss`."""
        return focal_loss(
            input,
            target,
            gamma=self.gamma,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )

    def __repr__(self) -> str:
        return (
            f"FocalLoss(gamma={self.gamma}, weight={self.weight!r}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r})"
        )


class BinaryFocalLoss(nn.Module):
    """Module form of :func:`binary_focal_loss`.

    Example:
        >>> criterion = BinaryFocalLoss(alpha=0.25, gamma=2.0)
        >>> criterion
        BinaryFocalLoss(alpha=0.25, gamma=2.0, reduction='mean')
    """

    def __init__(
        self, *, alpha: float | None = 0.25, gamma: float = 2.0, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.alpha = (
            None if alpha is None else check_float(alpha, "alpha", minimum=0.0, maximum=1.0)
        )
        self.gamma = check_float(gamma, "gamma", minimum=0.0)
        self.reduction = check_reduction(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """See :func:`binary_focal_loss`."""
        return binary_focal_loss(
            input, target, alpha=self.alpha, gamma=self.gamma, reduction=self.reduction
        )

    def __repr__(self) -> str:
        return (
            f"BinaryFocalLoss(alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r})"
        )
