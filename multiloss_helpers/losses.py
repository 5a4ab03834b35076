r"""Focal losses, multi-class and binary, stable in value and gradient.

This module holds the public functions (their checks and documentation) and their module
forms; the fused kernels that compute them live in ``_focal_kernels.py``. Both losses have
an analytic backward pass written in bounded quantities, so values and gradients stay
finite where autograd's derivative of ``(1 - p_t) ** gamma`` would give ``0 * inf``.

Precision: float16 and bfloat16 inputs are computed and reduced in float32, as
``F.cross_entropy`` is under autocast, and the result is cast back to the input's
dtype; float64 stays float64.

Host synchronisation: the value checks that need one (class indices in range,
targets in ``[0, 1]``, non-negative ``weight``) run for CPU tensors only. On an
accelerator no call reads a value back to the host.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._focal_kernels import binary_focal, multiclass_focal
from ._validation import check_float, check_int, check_reduction, check_same_device, describe

__all__ = ["BinaryFocalLoss", "FocalLoss", "binary_focal_loss", "focal_loss"]


def _check_weight_type(weight: Any) -> None:
    if not isinstance(weight, Tensor):
        raise TypeError(f"`weight` must be a tensor of per-class weights, got {describe(weight)}")
    if not weight.is_floating_point():
        raise TypeError(f"`weight` must be a floating-point tensor, got {weight.dtype}")


def _check_weight_values(weight: Tensor, name: str) -> None:
    """Non-negative, finite weights; checked for CPU tensors only (no host sync)."""
    if weight.device.type == "cpu" and weight.numel():
        ok = (weight >= 0) & torch.isfinite(weight)
        if not bool(ok.all()):
            bad = weight[~ok].flatten()[0]
            raise ValueError(f"`{name}` must be non-negative and finite, got {float(bad)}")


def _check_class_indices(target: Tensor, num_classes: int, ignore_index: int) -> None:
    labels = target.long()  # a narrow dtype would wrap `ignore_index` (uint8: -100 is 156)
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= num_classes))
    if bool(bad.any()):
        value = int(labels[bad].flatten()[0])
        raise ValueError(
            f"`target` holds class index {value}, outside [0, {num_classes}) "
            f"(and not `ignore_index`={ignore_index})"
        )


def _check_focal_args(
    input: Any, target: Any, gamma: Any, weight: Any, ignore_index: Any, reduction: Any
) -> tuple[float, int, bool]:
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
    check_same_device(target, "target", input, "input")
    gamma = check_float(gamma, "gamma", minimum=0.0)
    check_reduction(reduction)
    ignore_index = check_int(ignore_index, "ignore_index")  # NumPy integers too, not bool
    num_classes = input.shape[1]
    if weight is not None:
        _check_weight_type(weight)
        if weight.shape != (num_classes,):
            raise ValueError(
                f"`weight` must have one entry per class ({num_classes}), "
                f"got shape {tuple(weight.shape)}"
            )
        check_same_device(weight, "weight", input, "input")
        _check_weight_values(weight, "weight")
    has_ignored = True  # unknown on an accelerator: no value is read back there
    if target.device.type == "cpu":
        has_ignored = False
        if target.numel():  # one pass in the usual case: every index in range
            low, high = (int(v) for v in torch.aminmax(target))
            has_ignored = low <= ignore_index <= high
            if low < 0 or high >= num_classes:
                _check_class_indices(target, num_classes, ignore_index)
    return gamma, ignore_index, has_ignored


def focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    r"""Multi-class focal loss on logits with class-index targets.

    .. math::

        \ell_i = - w_{y_i} \, (1 - p_{i, y_i})^{\gamma} \, \log p_{i, y_i},
        \qquad p_i = \operatorname{softmax}(x_i)

    The factor :math:`(1 - p_t)^\gamma` shrinks the loss of samples the model
    already classifies well, so training focuses on the hard ones. With ``gamma=0``
    it *is* :func:`torch.nn.functional.cross_entropy` with the same ``weight``,
    ``ignore_index`` and ``reduction``; in particular ``"mean"`` divides by the
    summed weights of the non-ignored targets, as cross-entropy does. Per-class
    ``weight`` plays the role of the paper's :math:`\alpha` for several classes.

    Values and gradients are finite for logits up to :math:`\pm 10^4` in float32 and
    every ``gamma >= 0``: the target's log-probability is computed in log space
    (``x_t - logsumexp(x)``, or ``log_softmax`` with many classes) and the gradient
    analytically (see the module's docstring). Second derivatives are supported
    (``create_graph=True``), and so is a ``weight`` that requires grad. float16 and
    bfloat16 logits are computed and reduced in float32 and the result has the input's
    dtype, with and without autocast, whatever ``gamma`` (under autocast
    ``F.cross_entropy`` itself would return float32). Rows whose target is
    ``ignore_index`` give neither loss nor gradient, even when their logits are NaN or
    infinite.

    The value checks (class indices in range, ``weight`` non-negative and finite)
    run for CPU tensors only, so that a call on an accelerator never waits for the
    device; there an index out of range fails in the device's own gather.

    Args:
        input: logits, shape ``(N, C)`` or ``(N, C, d1, ...)``.
        target: class indices in ``[0, C)``, shape ``(N,)`` or ``(N, d1, ...)``.
        gamma: focusing parameter :math:`\gamma \ge 0`. Default: ``2.0``.
        weight: per-class weights :math:`w_c \ge 0`, shape ``(C,)``, on the input's
            device. Default: ``None`` (all ones).
        ignore_index: a target value that contributes neither loss nor gradient.
            Default: ``-100``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per element, 0 where
            ignored). Default: ``"mean"``.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, d1, ...)``.
        - Target: ``(N,)`` or ``(N, d1, ...)``, integer.
        - Output: scalar, or the target's shape for ``reduction="none"``.

    Example:
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.5, 3.0]])
        >>> target = torch.tensor([0, 1])
        >>> focal_loss(logits, target, gamma=2.0)
        tensor(1.1306)
        >>> import torch.nn.functional as F
        >>> torch.equal(focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target))
        True

    Paper: Lin et al. 2017, "Focal Loss for Dense Object Detection",
    `arXiv:1708.02002 <https://arxiv.org/abs/1708.02002>`_.
    """
    gamma, ignore_index, has_ignored = _check_focal_args(
        input, target, gamma, weight, ignore_index, reduction
    )
    return multiclass_focal(
        input, target, gamma, weight, ignore_index, reduction, has_ignored=has_ignored
    )


def binary_focal_loss(
    input: Tensor,
    target: Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Binary (and multi-label) focal loss on logits.

    .. math::

        \ell = - \alpha_t \, (1 - p_t)^{\gamma} \log p_t, \qquad
        p_t = p\,y + (1 - p)(1 - y), \quad
        \alpha_t = \alpha\,y + (1 - \alpha)(1 - y), \quad p = \sigma(x)

    ``alpha`` weights positives by :math:`\alpha` and negatives by
    :math:`1 - \alpha` (:math:`\alpha_t`, as in the paper and torchvision's
    ``sigmoid_focal_loss``): one constant factor for every sample would only
    rescale the loss. ``alpha=None`` turns the weighting off; with
    ``alpha=None, gamma=0`` the loss *is*
    :func:`torch.nn.functional.binary_cross_entropy_with_logits`. Targets may be
    soft (any value in ``[0, 1]``), and may require grad. Values and gradients are
    finite for logits up to :math:`\pm 10^4` in float32 and every ``gamma >= 0``, and
    no term cancels: a well-classified element's tiny loss keeps its relative
    precision. Infinite logits give the limits: ``-inf`` with target 0 and ``+inf``
    with target 1 have loss 0 and gradient 0 (the mask of a class that cannot occur);
    an infinite logit on the wrong side of its target (``-inf`` with target 1, ``+inf``
    with target 0, or any infinite logit with a soft target) gives an infinite loss
    (0 where :math:`\alpha_t = 0`) and the limit of the gradient, which is finite
    (:math:`-\alpha_t` for ``-inf`` with target 1); a target's gradient at an infinite
    logit is 0 or infinite. NaN logits give NaN.
    Second derivatives are supported (``create_graph=True``). float16 and
    bfloat16 logits are computed and reduced in float32, and the result has the
    input's dtype. The check that targets lie in ``[0, 1]`` runs for CPU tensors only
    (no host sync on an accelerator). Targets that are exactly 0 or 1 take a shorter
    computation (on the CPU it is detected per chunk; boolean targets take it on
    every device).

    Args:
        input: logits of any shape.
        target: targets in ``[0, 1]`` of the input's shape, on the input's device.
        alpha: weight of the positive class in ``[0, 1]``, or ``None``.
            Default: ``0.25``.
        gamma: focusing parameter :math:`\gamma \ge 0`. Default: ``2.0``.
        reduction: ``"mean"`` (over all elements), ``"sum"`` or ``"none"``.
            Default: ``"mean"``.

    Shape:
        - Input: ``(*)``; Target: ``(*)``, same shape.
        - Output: scalar, or ``(*)`` for ``reduction="none"``.

    Example:
        >>> logits = torch.tensor([3.0, -1.0, 0.5])
        >>> target = torch.tensor([1.0, 0.0, 0.0])
        >>> binary_focal_loss(logits, target, alpha=0.25, gamma=2.0)
        tensor(0.1000)

    Paper: Lin et al. 2017, "Focal Loss for Dense Object Detection",
    `arXiv:1708.02002 <https://arxiv.org/abs/1708.02002>`_.
    """
    if not isinstance(input, Tensor) or not input.is_floating_point():
        raise TypeError(f"`input` must be a floating-point tensor of logits, got {describe(input)}")
    if not isinstance(target, Tensor):
        raise TypeError(f"`target` must be a tensor of the input's shape, got {describe(target)}")
    if target.is_complex():
        raise TypeError(f"`target` must hold real values in [0, 1], got dtype {target.dtype}")
    if target.shape != input.shape:
        raise ValueError(
            f"`target` must have the input's shape {tuple(input.shape)}, got {tuple(target.shape)}"
        )
    check_same_device(target, "target", input, "input")
    gamma = check_float(gamma, "gamma", minimum=0.0)
    if alpha is not None:
        alpha = check_float(alpha, "alpha", minimum=0.0, maximum=1.0)
    check_reduction(reduction)
    return binary_focal(input, target, alpha, gamma, reduction)


# --------------------------------------------------------------------------- modules
class FocalLoss(nn.Module):
    r"""Module form of :func:`focal_loss`: stores the hyperparameters, calls the function.

    ``weight`` is registered as a buffer, so it follows ``.to(device)`` and is saved
    in the ``state_dict``.

    Args:
        gamma: focusing parameter :math:`\gamma \ge 0`. Default: ``2.0``.
        weight: per-class weights, shape ``(C,)``. Default: ``None``.
        ignore_index: a target value that contributes neither loss nor gradient.
            Default: ``-100``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default: ``"mean"``.

    Example:
        >>> criterion = FocalLoss(gamma=2.0, weight=torch.tensor([1.0, 4.0]))
        >>> criterion
        FocalLoss(gamma=2.0, weight=tensor([1., 4.]), ignore_index=-100, reduction='mean')
        >>> logits, target = torch.zeros(3, 2), torch.tensor([0, 1, 1])
        >>> expected = focal_loss(logits, target, weight=criterion.weight)
        >>> torch.equal(criterion(logits, target), expected)
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
        self.ignore_index = check_int(ignore_index, "ignore_index")
        self.reduction = check_reduction(reduction)
        if weight is not None:
            _check_weight_type(weight)
            if weight.dim() != 1:
                raise ValueError(f"`weight` must have shape (C,), got shape {tuple(weight.shape)}")
            _check_weight_values(weight, "weight")
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

    def extra_repr(self) -> str:
        return (
            f"gamma={self.gamma}, weight={self.weight!r}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )


class BinaryFocalLoss(nn.Module):
    r"""Module form of :func:`binary_focal_loss`.

    Args:
        alpha: weight of the positive class in ``[0, 1]``, or ``None``.
            Default: ``0.25``.
        gamma: focusing parameter :math:`\gamma \ge 0`. Default: ``2.0``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default: ``"mean"``.

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

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}, reduction={self.reduction!r}"
