r"""Soft Dice losses for segmentation, multi-class and binary, and Dice plus cross-entropy.

The soft Dice loss of one class :math:`c` compares the predicted probabilities
:math:`p_{c,i}` with the one-hot target :math:`t_{c,i}` over the pixels (or voxels)
:math:`i` of an image:

.. math::

    \ell_c = 1 - \frac{2 \sum_i p_{c,i} t_{c,i} + s}{\sum_i p_{c,i} + \sum_i t_{c,i} + s}

with a smoothing constant :math:`s` in the numerator and the denominator
(Milletari et al. 2016). The values equal MONAI's ``DiceLoss`` and ``DiceCELoss``
with the same settings; the tests compare them.

Precision: float16 and bfloat16 logits are computed and reduced in float32 and the
result has the input's dtype; float64 stays float64. The value checks that need the
host (class indices in range, binary targets in ``[0, 1]``, non-negative ``weight``)
run for CPU tensors only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_real_floating,
    check_reduction,
    check_same_device,
    check_tensor,
    describe,
)

__all__ = ["BinaryDiceLoss", "DiceCELoss", "DiceLoss", "binary_dice_loss", "dice_loss"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other floating dtype is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_logits(logits: Any) -> Tensor:
    check_tensor(logits, "logits")
    check_real_floating(logits, "`logits`")
    if logits.dim() < 3:
        raise ValueError(
            "`logits` must have shape (N, C, d1, ...) with at least one spatial dimension, "
            f"got {tuple(logits.shape)}"
        )
    return logits


def _check_weight(weight: Any, num_classes: int, logits: Tensor) -> Tensor | None:
    if weight is None:
        return None
    check_tensor(weight, "weight")
    check_real_floating(weight, "`weight`")
    if tuple(weight.shape) != (num_classes,):
        raise ValueError(
            f"`weight` must have one entry per class of `logits`, shape ({num_classes},), "
            f"got shape {tuple(weight.shape)}"
        )
    check_same_device(weight, "weight", logits, "logits")
    if weight.device.type == "cpu":
        ok = (weight >= 0) & torch.isfinite(weight)
        if not bool(ok.all()):
            raise ValueError(
                f"`weight` must be non-negative and finite, got {float(weight[~ok][0])}"
            )
    return weight


def _check_common(smooth: Any, per_image: Any, reduction: Any) -> float:
    smooth = check_float(smooth, "smooth", minimum=0.0, open_minimum=True)
    check_bool(per_image, "per_image")
    check_reduction(reduction)
    return smooth


def _optional_int(value: Any, name: str) -> int | None:
    return None if value is None else check_int(value, name)


def _check_ignore_index(ignore_index: Any, num_classes: int) -> int | None:
    if ignore_index is None:
        return None
    value = check_int(ignore_index, "ignore_index")
    if 0 <= value < num_classes:
        raise ValueError(
            f"`ignore_index` must not be a class index in [0, {num_classes}), got {value}: "
            "that class would keep a Dice term whose target is empty (about 1 for any "
            "prediction). Give the ignored pixels a value outside the classes (e.g. 255 or "
            "-100); to leave class 0 out of the Dice, use include_background=False"
        )
    return value


def _check_labels(target: Any, logits: Tensor, ignore_index: int | None) -> Tensor:
    if not isinstance(target, Tensor):
        raise TypeError(f"`target` must be a tensor of class indices, got {describe(target)}")
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
        raise TypeError(
            f"`target` must hold integer class indices (e.g. torch.long), got {target.dtype}; "
            "for a float or bool mask of the logits' shape use binary_dice_loss"
        )
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"`target` must have shape {expected} (N, d1, ...) for `logits` of shape "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    check_same_device(target, "target", logits, "logits")
    num_classes = logits.shape[1]
    if target.device.type == "cpu" and target.numel():
        low, high = torch.aminmax(target)  # one pass; the slow search only on a bad value
        if int(low) < 0 or int(high) >= num_classes:
            labels = target.long()
            bad = (labels < 0) | (labels >= num_classes)
            if ignore_index is not None:
                bad &= labels != ignore_index
            if bool(bad.any()):
                raise ValueError(
                    f"`target` holds class index {int(labels[bad][0])}, outside "
                    f"[0, {num_classes})"
                    + ("" if ignore_index is None else f" and not `ignore_index`={ignore_index}")
                )
    return target


def _dice_from_sums(
    intersection: Tensor, pred_sum: Tensor, target_sum: Tensor, smooth: float, per_image: bool
) -> Tensor:
    """``1 - (2 I + s) / (P + T + s)`` per (image, class), or per class for batch Dice."""
    if not per_image:
        intersection, pred_sum, target_sum = (
            intersection.sum(0),
            pred_sum.sum(0),
            target_sum.sum(0),
        )
    return 1 - (2 * intersection + smooth) / (pred_sum + target_sum + smooth)


def _class_sums(
    prob: Tensor, labels: Tensor, counted: Tensor | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per (image, class): the probability on the class's own pixels and the pixel count;
    and per pixel, the probability of its own class.

    Each pixel's probability of its own class is added into that class's bin
    (``scatter_add``), which costs one pass over the pixels instead of a one-hot tensor.
    """
    batch, num_classes = prob.shape[:2]
    p_target = prob.gather(1, labels.unsqueeze(1)).squeeze(1)
    zeros = torch.zeros(batch, num_classes, dtype=prob.dtype, device=prob.device)
    ones = torch.ones_like(p_target) if counted is None else counted
    intersection = zeros.scatter_add(1, labels, p_target)
    return intersection, zeros.scatter_add(1, labels, ones), p_target


def _soft_dice_input_grad(
    prob: Tensor,
    labels: Tensor,
    intersection: Tensor,
    denominator: Tensor,
    grad: Tensor,
    smooth: float,
) -> Tensor:
    r"""The gradient of the unreduced soft Dice with respect to the logits.

    With :math:`\ell = 1 - (2I + s) / D`: :math:`\partial \ell / \partial I = -2 / D` and
    :math:`\partial \ell / \partial P = (2I + s) / D^2` (``a`` and ``b`` below, times the
    incoming gradient), so the gradient on the probabilities is ``b + a [c = y]``, and the
    softmax's backward gives ``p * (b + a [c = y] - r)`` with ``r`` the probability-weighted
    sum over classes. Written in differentiable operations, so that it also serves double
    backward when ``prob``, ``intersection`` and ``denominator`` carry a graph.
    """
    a = -2 * grad / denominator
    b = grad * (2 * intersection + smooth) / denominator.square()
    if a.dim() == 1:  # batch Dice: one value per class, the same for every image
        a, b = a.expand(prob.shape[0], -1), b.expand(prob.shape[0], -1)
    a_target = a.gather(1, labels)  # (N, P)
    p_target = prob.gather(1, labels.unsqueeze(1)).squeeze(1)
    r = torch.bmm(b.unsqueeze(1), prob).squeeze(1) + p_target * a_target
    out = prob * (b.unsqueeze(2) - r.unsqueeze(1))
    return out.scatter_add(1, labels.unsqueeze(1), (p_target * a_target).unsqueeze(1))


def _soft_dice_sums(
    x: Tensor, labels: Tensor, valid: Tensor | None, smooth: float, per_image: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The masked probabilities, each pixel's probability of its class, I and P + T + s."""
    prob = torch.softmax(x, dim=1)
    counted = None
    if valid is not None:
        counted = valid.to(prob.dtype)
        prob = prob * counted.unsqueeze(1)
    intersection, target_sum, p_target = _class_sums(prob, labels, counted)
    pred_sum = prob.sum(2)
    if not per_image:
        intersection, pred_sum, target_sum = (
            intersection.sum(0),
            pred_sum.sum(0),
            target_sum.sum(0),
        )
    return prob, p_target, intersection, pred_sum + target_sum + smooth


class _SoftDiceFunction(torch.autograd.Function):
    """Unreduced soft Dice of ``(N, C, P)`` logits, its gradient written out.

    Autograd through softmax, gather and scatter_add stores and revisits more than the
    analytic gradient needs; this one pass is what keeps ``dice_loss`` at or below MONAI's
    one-hot form in time (benchmarks/dice.py). Ignored pixels (``valid`` false) have their
    probabilities set to 0, which also zeroes their gradient in the formula. A backward
    that is to be differentiated again (``create_graph=True``) rebuilds the same gradient
    from the saved logits in differentiable operations.
    """

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, labels: Tensor, valid: Tensor | None, smooth: float, per_image: bool
    ) -> Tensor:
        prob, p_target, intersection, denominator = _soft_dice_sums(
            x, labels, valid, smooth, per_image
        )
        ctx.save_for_backward(x, labels, valid, prob, p_target, intersection, denominator)
        ctx.smooth, ctx.per_image = smooth, per_image
        return 1 - (2 * intersection + smooth) / denominator

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None, None, None]:
        x, labels, valid, prob, p_target, intersection, denominator = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: rebuild the sums from x with a graph
            prob, _, intersection, denominator = _soft_dice_sums(
                x, labels, valid, ctx.smooth, ctx.per_image
            )
            grad_x = _soft_dice_input_grad(
                prob, labels, intersection, denominator, grad, ctx.smooth
            )
            return grad_x, None, None, None, None
        # the same arithmetic as _soft_dice_input_grad, in place on one (N, C, P) buffer
        a = -2 * grad / denominator
        b = grad * (2 * intersection + ctx.smooth) / denominator.square()
        if a.dim() == 1:
            a, b = a.expand(prob.shape[0], -1), b.expand(prob.shape[0], -1)
        index = labels.unsqueeze(1)
        on_target = p_target * a.gather(1, labels)
        r = torch.bmm(b.unsqueeze(1), prob).squeeze(1).add_(on_target)
        grad_x = torch.sub(b.unsqueeze(2), r.unsqueeze(1)).mul_(prob)
        grad_x.scatter_add_(1, index, on_target.unsqueeze(1))
        return grad_x, None, None, None, None


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    smooth: float = 1e-5,
    per_image: bool = True,
    include_background: bool = True,
    weight: Tensor | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Soft Dice loss on multi-class logits and class-index targets (softmax inside).

    With :math:`p = \operatorname{softmax}(x)` over the classes and :math:`t` the one-hot
    target, the loss of image :math:`n` and class :math:`c` sums over its pixels :math:`i`:

    .. math::

        \ell_{n,c} = 1 - \frac{2 \sum_i p_{n,c,i}\, t_{n,c,i} + s}
                          {\sum_i p_{n,c,i} + \sum_i t_{n,c,i} + s}

    (Milletari et al. 2016). With ``per_image=False`` (batch Dice) the three sums run over
    the pixels of the whole batch, one :math:`\ell_c` per class. ``weight`` multiplies
    each class's loss, :math:`w_c \ell_{n,c}`; ``"mean"`` then averages over the
    :math:`N \times C` (or :math:`C`) entries, not over the summed weights as
    :func:`torch.nn.functional.cross_entropy` does. (Sudre et al. 2017's generalised Dice
    weights the sums inside the fraction instead, by :math:`1 / (\sum_i t_{c,i})^2`, so
    that a rare class counts as much as a common one; MONAI has it as
    ``GeneralizedDiceLoss``.) With ``include_background=False`` class 0 is left out of the
    Dice (its pixels still count as wrong for a prediction of another class), and
    ``weight[0]`` is unused.

    Smoothing and empty classes: a class absent from an image's target *and* from its
    prediction gives :math:`1 - s / s = 0`, not the NaN of :math:`0 / 0` (``smooth`` must
    therefore be positive). But a softmax never predicts exactly 0: a class absent from
    the target has :math:`\ell = 1 - s / (\sum_i p_{c,i} + s)`, which stays close to 1
    until the predicted mass :math:`\sum_i p_{c,i}` falls to the order of :math:`s`. With
    the default :math:`s = 10^{-5}` the Dice of an empty class is "stuck at 1" whatever
    the model does, and its gradient :math:`s / (\sum_i p + s)^2` nearly vanishes: that
    class only adds a constant to the loss. A larger ``smooth`` (1 is common), batch Dice,
    or cross-entropy alongside (:class:`DiceCELoss`) are the usual remedies.

    ``ignore_index``: pixels whose target is ``ignore_index`` count in neither the
    intersection nor either denominator, for every class; their logits may be NaN or
    infinite and get a zero gradient. The value must lie outside ``[0, C)``. MONAI does the
    same for such a value (it multiplies prediction and one-hot target by the mask).

    Agreement: the values equal MONAI's ``DiceLoss(softmax=True, to_onehot_y=True,
    smooth_nr=smooth, smooth_dr=smooth, batch=not per_image,
    include_background=include_background, weight=w, reduction=reduction)`` on a target of
    shape ``(N, 1, d1, ...)``, where ``w`` is ``weight`` without its first entry when
    ``include_background=False``. ``reduction="none"`` returns shape ``(N, C)`` (``(C,)``
    for batch Dice; one class fewer without the background), where MONAI keeps singleton
    spatial dimensions. segmentation_models_pytorch's ``DiceLoss`` differs: it computes
    batch Dice (sums over the batch and the pixels), with ``smooth=0`` and the denominator
    clamped at ``eps``, and it sets the loss of a class absent from the batch's target to
    0 (still counted in the mean over classes).

    Args:
        logits: unnormalised scores, shape ``(N, C, d1, ...)`` with :math:`C \ge 2` and at
            least one spatial dimension.
        target: class indices in ``[0, C)`` (or ``ignore_index``), shape ``(N, d1, ...)``,
            an integer dtype.
        smooth: :math:`s > 0`, added to numerator and denominator. Default: ``1e-5``.
        per_image: one Dice per image and class (``True``) or per class over the batch
            (``False``, batch Dice). Default: ``True``.
        include_background: keep class 0 in the loss. Default: ``True``.
        weight: per-class weights :math:`w_c \ge 0`, shape ``(C,)``. Default: ``None``.
        ignore_index: a target value outside ``[0, C)`` whose pixels are left out.
            Default: ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default: ``"mean"``.

    Returns:
        The loss in the logits' dtype; a scalar, or ``(N, C)`` / ``(C,)`` for ``"none"``.

    Example:
        >>> logits = torch.tensor([[[4.0, -4.0], [-4.0, 4.0]]]).unsqueeze(-1)  # (1, 2, 2, 1)
        >>> target = torch.tensor([[[0], [1]]])  # (1, 2, 1)
        >>> dice_loss(logits, target)  # nearly right: close to 0
        tensor(0.0003)
        >>> dice_loss(logits, 1 - target, reduction="none")  # wrong: close to 1
        tensor([[0.9997, 0.9997]])

    Papers: Milletari, Navab & Ahmadi 2016, "V-Net: Fully Convolutional Neural Networks for
    Volumetric Medical Image Segmentation",
    `arXiv:1606.04797 <https://arxiv.org/abs/1606.04797>`_; Sudre et al. 2017,
    "Generalised Dice overlap as a deep learning loss function for highly unbalanced
    segmentations", `arXiv:1707.03237 <https://arxiv.org/abs/1707.03237>`_.
    """
    loss = _dice(
        logits,
        target,
        smooth=smooth,
        per_image=per_image,
        include_background=include_background,
        weight=weight,
        ignore_index=ignore_index,
        reduction=reduction,
    )
    return loss.to(logits.dtype)


def _dice(
    logits: Tensor,
    target: Tensor,
    *,
    smooth: float,
    per_image: bool,
    include_background: bool,
    weight: Tensor | None,
    ignore_index: int | None,
    reduction: str,
) -> Tensor:
    """:func:`dice_loss` checked and computed, in the compute dtype (float32 or float64)."""
    _check_logits(logits)
    num_classes = logits.shape[1]
    if num_classes < 2:
        raise ValueError(
            f"`logits` must have C >= 2 classes for a softmax, got shape {tuple(logits.shape)}; "
            "for one class use binary_dice_loss"
        )
    smooth = _check_common(smooth, per_image, reduction)
    check_bool(include_background, "include_background")
    ignore_index = _check_ignore_index(ignore_index, num_classes)
    _check_labels(target, logits, ignore_index)
    weight = _check_weight(weight, num_classes, logits)
    dtype = _compute_dtype(logits.dtype)
    batch = logits.shape[0]
    x = logits.to(dtype).reshape(batch, num_classes, -1)
    labels = target.reshape(batch, -1).long()
    valid = None
    if ignore_index is not None:
        valid = labels != ignore_index
        # where() before the softmax: NaN or inf logits of an ignored pixel reach nothing
        x = x.masked_fill(~valid.unsqueeze(1), 0.0)
        labels = labels.masked_fill(~valid, 0)
    loss = _SoftDiceFunction.apply(x, labels, valid, smooth, per_image)
    if weight is not None:
        loss = loss * weight.to(dtype)
    if not include_background:
        loss = loss[..., 1:]
    return _reduce(loss, reduction)


def _check_binary_target(target: Any, logits: Tensor) -> Tensor:
    if not isinstance(target, Tensor):
        raise TypeError(f"`target` must be a float or bool tensor, got {describe(target)}")
    if not (target.is_floating_point() or target.dtype == torch.bool):
        raise TypeError(
            f"`target` must be a float or bool mask of the logits' shape, got {target.dtype}; "
            "for class indices use dice_loss"
        )
    if target.shape != logits.shape:
        raise ValueError(
            f"`target` must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    check_same_device(target, "target", logits, "logits")
    if target.device.type == "cpu" and target.is_floating_point() and target.numel():
        bad = ~((target >= 0) & (target <= 1))
        if bool(bad.any()):
            raise ValueError(f"`target` must lie in [0, 1], got {float(target[bad][0])}")
    return target


def binary_dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    smooth: float = 1e-5,
    per_image: bool = True,
    reduction: str = "mean",
) -> Tensor:
    r"""Soft Dice loss on binary (multi-label) logits, a sigmoid inside.

    Each channel :math:`c` is its own foreground mask, :math:`p = \sigma(x)`:

    .. math::

        \ell_{n,c} = 1 - \frac{2 \sum_i p_{n,c,i}\, t_{n,c,i} + s}
                          {\sum_i p_{n,c,i} + \sum_i t_{n,c,i} + s}

    as in :func:`dice_loss` (the same smoothing, empty masks and batch Dice; see there).
    Targets may be soft, in ``[0, 1]``. One binary mask per image has shape
    ``(N, 1, H, W)``: the sums run over the dimensions after the second, never over the
    channels. An empty mask is stuck near 1 in the same way until the predicted mass
    :math:`\sum_i p_{n,c,i}` falls to the order of :math:`s`. The values equal MONAI's
    ``DiceLoss(sigmoid=True, smooth_nr=smooth, smooth_dr=smooth, batch=not per_image,
    reduction=reduction)`` (``"none"`` returns ``(N, C)`` or, for batch Dice, ``(C,)``).

    Args:
        logits: unnormalised scores, shape ``(N, C, d1, ...)``, at least one spatial
            dimension.
        target: float targets in ``[0, 1]`` or a bool mask, the logits' shape.
        smooth: :math:`s > 0`, added to numerator and denominator. Default: ``1e-5``.
        per_image: one Dice per image and channel (``True``) or per channel over the batch
            (``False``). Default: ``True``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default: ``"mean"``.

    Returns:
        The loss in the logits' dtype; a scalar, or ``(N, C)`` / ``(C,)`` for ``"none"``.

    Example:
        >>> logits = torch.tensor([[[[5.0, -5.0, -5.0]]]])  # (1, 1, 1, 3)
        >>> target = torch.tensor([[[[True, False, False]]]])
        >>> binary_dice_loss(logits, target)
        tensor(0.0100)

    Paper: Milletari, Navab & Ahmadi 2016, "V-Net",
    `arXiv:1606.04797 <https://arxiv.org/abs/1606.04797>`_.
    """
    _check_logits(logits)
    smooth = _check_common(smooth, per_image, reduction)
    _check_binary_target(target, logits)
    dtype = _compute_dtype(logits.dtype)
    batch, channels = logits.shape[:2]
    prob = torch.sigmoid(logits.to(dtype).reshape(batch, channels, -1))
    t = target.to(dtype).reshape(batch, channels, -1)
    loss = _dice_from_sums((prob * t).sum(2), prob.sum(2), t.sum(2), smooth, per_image)
    return _reduce(loss, reduction).to(logits.dtype)


class DiceLoss(nn.Module):
    r"""Module form of :func:`dice_loss`: stores the options, calls the function.

    ``weight`` is registered as a buffer (it follows ``.to(device)``).

    Args:
        smooth: :math:`s > 0`. Default: ``1e-5``.
        per_image: per-image (``True``) or batch Dice. Default: ``True``.
        include_background: keep class 0. Default: ``True``.
        weight: per-class weights, shape ``(C,)``. Default: ``None``.
        ignore_index: a target value outside the classes to leave out. Default: ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default: ``"mean"``.

    Example:
        >>> criterion = DiceLoss(per_image=False)
        >>> logits, target = torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long)
        >>> torch.equal(criterion(logits, target), dice_loss(logits, target, per_image=False))
        True
    """

    weight: Tensor | None

    def __init__(
        self,
        *,
        smooth: float = 1e-5,
        per_image: bool = True,
        include_background: bool = True,
        weight: Tensor | None = None,
        ignore_index: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.smooth = _check_common(smooth, per_image, reduction)
        self.per_image = per_image
        self.include_background = check_bool(include_background, "include_background")
        self.ignore_index = (
            None if ignore_index is None else check_int(ignore_index, "ignore_index")
        )
        self.reduction = reduction
        if weight is not None:
            check_tensor(weight, "weight")
            check_real_floating(weight, "`weight`")
        self.register_buffer("weight", weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """See :func:`dice_loss`."""
        return dice_loss(
            logits,
            target,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"smooth={self.smooth}, per_image={self.per_image}, "
            f"include_background={self.include_background}, weight={self.weight!r}, "
            f"ignore_index={self.ignore_index}, reduction={self.reduction!r}"
        )


class BinaryDiceLoss(nn.Module):
    r"""Module form of :func:`binary_dice_loss`.

    Args:
        smooth: :math:`s > 0`. Default: ``1e-5``.
        per_image: per-image (``True``) or batch Dice. Default: ``True``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``. Default: ``"mean"``.

    Example:
        >>> criterion = BinaryDiceLoss(smooth=1.0)
        >>> criterion
        BinaryDiceLoss(smooth=1.0, per_image=True, reduction='mean')
        >>> criterion(torch.zeros(2, 1, 3, 3), torch.ones(2, 1, 3, 3))
        tensor(0.3103)
    """

    def __init__(
        self, *, smooth: float = 1e-5, per_image: bool = True, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.smooth = _check_common(smooth, per_image, reduction)
        self.per_image = per_image
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """See :func:`binary_dice_loss`."""
        return binary_dice_loss(
            logits, target, smooth=self.smooth, per_image=self.per_image, reduction=self.reduction
        )

    def extra_repr(self) -> str:
        return f"smooth={self.smooth}, per_image={self.per_image}, reduction={self.reduction!r}"


class DiceCELoss(nn.Module):
    r"""Dice plus cross-entropy: ``lambda_dice * dice_loss + lambda_ce * cross_entropy``.

    .. math::

        L = \lambda_\text{Dice}\, \text{Dice}(x, y) + \lambda_\text{CE}\, \text{CE}(x, y)

    with :func:`dice_loss` and :func:`torch.nn.functional.cross_entropy` on the same
    logits and class-index targets. The Dice term measures overlap per class and so
    weighs a small class like a large one, but its gradient on a tiny or empty class is
    small or nearly zero (see :func:`dice_loss`); cross-entropy gives every pixel a
    gradient and keeps the probabilities calibrated. nnU-Net (Isensee et al. 2021) trains
    with this sum.

    ``weight`` goes to both terms: cross-entropy's class weights (its ``"mean"`` divides by
    the summed weights of the pixels' classes) and Dice's per-class factors.
    ``include_background=False`` affects the Dice term only: cross-entropy keeps every
    class. ``ignore_index`` leaves its pixels out of both terms (cross-entropy's own
    ``ignore_index``). ``reduction`` (``"mean"`` or ``"sum"``) applies to both: ``"sum"``
    adds cross-entropy over all pixels to Dice over images and classes.

    Agreement: without ``ignore_index`` the value equals MONAI's
    ``DiceCELoss(softmax=True, to_onehot_y=True, smooth_nr=smooth, smooth_dr=smooth,
    batch=not per_image, include_background=..., weight=weight, lambda_dice=...,
    lambda_ce=..., reduction=...)``; MONAI's ``DiceCELoss`` takes no ``ignore_index``.

    Args:
        lambda_dice: weight :math:`\lambda_\text{Dice} \ge 0` of the Dice term.
            Default: ``1.0``.
        lambda_ce: weight :math:`\lambda_\text{CE} \ge 0` of the cross-entropy term.
            Default: ``1.0``.
        smooth: Dice smoothing :math:`s > 0`. Default: ``1e-5``.
        per_image: per-image (``True``) or batch Dice. Default: ``True``.
        include_background: keep class 0 in the Dice term. Default: ``True``.
        weight: per-class weights, shape ``(C,)``, for both terms. Default: ``None``.
        ignore_index: a target value outside the classes, left out of both terms.
            Default: ``None``.
        reduction: ``"mean"`` or ``"sum"``. Default: ``"mean"``.

    Example:
        >>> criterion = DiceCELoss(lambda_dice=1.0, lambda_ce=0.5)
        >>> logits = torch.zeros(1, 2, 2, 2)
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
        >>> dice = dice_loss(logits, target)
        >>> ce = F.cross_entropy(logits, target)
        >>> torch.allclose(criterion(logits, target), dice + 0.5 * ce)
        True

    Paper: Isensee et al. 2021, "nnU-Net: a self-configuring method for deep
    learning-based biomedical image segmentation", Nature Methods 18, 203-211
    (`arXiv:1809.10486 <https://arxiv.org/abs/1809.10486>`_).
    """

    weight: Tensor | None

    def __init__(
        self,
        *,
        lambda_dice: float = 1.0,
        lambda_ce: float = 1.0,
        smooth: float = 1e-5,
        per_image: bool = True,
        include_background: bool = True,
        weight: Tensor | None = None,
        ignore_index: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.lambda_dice = check_float(lambda_dice, "lambda_dice", minimum=0.0)
        self.lambda_ce = check_float(lambda_ce, "lambda_ce", minimum=0.0)
        self.smooth = check_float(smooth, "smooth", minimum=0.0, open_minimum=True)
        self.per_image = check_bool(per_image, "per_image")
        self.include_background = check_bool(include_background, "include_background")
        self.ignore_index = (
            None if ignore_index is None else check_int(ignore_index, "ignore_index")
        )
        self.reduction = check_choice(reduction, "reduction", ("mean", "sum"))
        if weight is not None:
            check_tensor(weight, "weight")
            check_real_floating(weight, "`weight`")
        self.register_buffer("weight", weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The weighted sum of :func:`dice_loss` and cross-entropy, in the logits' dtype."""
        dice = _dice(
            logits,
            target,
            smooth=self.smooth,
            per_image=self.per_image,
            include_background=self.include_background,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )
        dtype = _compute_dtype(logits.dtype)
        x = logits.to(dtype)
        labels = target.long()
        ignore = -100 if self.ignore_index is None else self.ignore_index
        if self.ignore_index is not None:  # NaN or inf logits of ignored pixels reach nothing
            x = x.masked_fill((labels == ignore).unsqueeze(1), 0.0)
        weight = None if self.weight is None else self.weight.to(dtype)
        ce = F.cross_entropy(
            x, labels, weight=weight, ignore_index=ignore, reduction=self.reduction
        )
        return (self.lambda_dice * dice + self.lambda_ce * ce).to(logits.dtype)

    def extra_repr(self) -> str:
        return (
            f"lambda_dice={self.lambda_dice}, lambda_ce={self.lambda_ce}, smooth={self.smooth}, "
            f"per_image={self.per_image}, include_background={self.include_background}, "
            f"weight={self.weight!r}, ignore_index={self.ignore_index}, "
            f"reduction={self.reduction!r}"
        )
