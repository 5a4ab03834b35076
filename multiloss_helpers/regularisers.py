r"""Penalty terms that a loss adds to itself: L1, L2 and the entropy of a prediction.

A regulariser is one more loss component. :func:`l2_penalty` and :func:`l1_penalty` look at
the weights only (biases and the scales and shifts of normalisation layers are skipped, as
is usual for weight decay); :func:`weight_decay_groups` gives an optimizer the same split, so
that the optimizer's ``weight_decay`` and a penalty in the loss decay the same tensors.
:func:`predictive_entropy` is the entropy of a softmax, for a confidence penalty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ._validation import (
    check_bool,
    check_float,
    check_int,
    check_params,
    check_reduction,
    check_unique,
    describe,
)

__all__ = ["l1_penalty", "l2_penalty", "predictive_entropy", "weight_decay_groups"]


def _covered(p: Tensor, skip_1d: bool) -> bool:
    r"""The split of :func:`weight_decay_groups`: weights (2-D and up) that are trained.

    A frozen parameter (an ``nn.Parameter`` with ``requires_grad=False``) is left out,
    as the optimizer groups leave it out; a plain tensor is counted.
    """
    frozen = isinstance(p, nn.Parameter) and not p.requires_grad
    return not frozen and (p.dim() >= 2 or not skip_1d)


def _penalty(params: Any, skip_1d: bool, term: Callable[[Tensor], Tensor]) -> Tensor:
    r"""``sum(term(p))`` over the covered tensors, accumulated in float32 (or float64)."""
    check_bool(skip_1d, "skip_1d")
    items = check_params(params, "params")
    check_unique(items, "params")
    out_dtype = items[0].dtype
    for i, p in enumerate(items):
        if not p.is_floating_point():
            raise TypeError(f"`params[{i}]` must be a floating-point tensor, got {p.dtype}")
        out_dtype = torch.promote_types(out_dtype, p.dtype)
    inner = torch.promote_types(out_dtype, torch.float32)
    terms = [term(p.to(inner)) for p in items if _covered(p, skip_1d)]
    if not terms:
        return torch.zeros((), device=items[0].device, dtype=out_dtype)
    return torch.stack(terms).sum().to(out_dtype)


def l2_penalty(params: nn.Module | Iterable[Tensor] | Tensor, *, skip_1d: bool = True) -> Tensor:
    r"""Half the squared L2 norm of the weights, the penalty that weight decay implements.

    .. math::

        \Omega(w) = \frac{1}{2} \sum_{W} \lVert W \rVert_2^2

    Its gradient is :math:`W` itself, so ``loss + lam * l2_penalty(model)`` under
    ``torch.optim.SGD`` takes exactly the steps of ``SGD(weight_decay_groups(model, lam))``
    on ``loss`` alone (with or without momentum). Under Adam the two differ from AdamW's
    decoupled decay; see Loshchilov & Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_.

    The covered tensors are those that ``weight_decay_groups`` decays: frozen parameters
    (``requires_grad=False``) are skipped too, and a tensor listed twice is a
    ``ValueError`` (it would count twice).

    Args:
        params: a module (its parameters), an iterable of tensors, or one tensor.
        skip_1d: skip tensors with fewer than two dimensions: biases and the weights of
            normalisation layers, which weight decay usually leaves alone.
            Default: ``True``.

    Returns:
        A 0-d tensor in the parameters' dtype, with a graph to every covered tensor that
        requires grad (a plain zero when nothing is covered). Low-precision weights are
        squared and summed in float32.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.tensor([[3.0, 4.0]]))
        >>> l2_penalty(net)  # the bias is skipped
        tensor(12.5000, grad_fn=<SumBackward0>)
    """
    return _penalty(params, skip_1d, lambda p: 0.5 * p.square().sum())


def l1_penalty(params: nn.Module | Iterable[Tensor] | Tensor, *, skip_1d: bool = True) -> Tensor:
    r"""The L1 norm of the weights, which drives small weights to zero (sparsity).

    .. math::

        \Omega(w) = \sum_{W} \sum_{j} \lvert W_j \rvert

    Its (sub)gradient is :math:`\operatorname{sign}(W)` (0 at 0): every weight is pulled
    towards zero by the same amount whatever its size, unlike L2's pull, which fades as the
    weight shrinks. With plain gradient steps the weights then hover near zero rather than
    sitting exactly on it; count them with a threshold. Frozen parameters are skipped and
    a tensor listed twice is refused, as in :func:`l2_penalty`.

    Args:
        params: a module (its parameters), an iterable of tensors, or one tensor.
        skip_1d: skip tensors with fewer than two dimensions (biases, normalisation
            weights). Default: ``True``.

    Returns:
        A 0-d tensor in the parameters' dtype (summed in float32 for low precision), with
        a graph to every covered tensor that requires grad.

    Example:
        >>> w = torch.tensor([[1.0, -2.0], [0.0, 0.5]], requires_grad=True)
        >>> l1_penalty([w])
        tensor(3.5000, grad_fn=<SumBackward0>)
    """
    return _penalty(params, skip_1d, lambda p: p.abs().sum())


def weight_decay_groups(
    model: nn.Module, weight_decay: float, *, skip_1d: bool = True
) -> list[dict[str, Any]]:
    r"""Two optimizer parameter groups: the weights with ``weight_decay``, the rest without.

    ``torch.optim.AdamW(weight_decay_groups(model, 0.01), lr=1e-3)`` decays the weights
    and leaves biases and normalisation weights alone, the split that :func:`l2_penalty`
    uses. A group that would be empty is left out. Parameters that do not require grad
    are left out too.

    Args:
        model: the network.
        weight_decay: the decay of the first group (``>= 0``).
        skip_1d: put tensors with fewer than two dimensions in the group without decay.
            Default: ``True``.

    Returns:
        A list of ``{"params": [...], "weight_decay": ...}`` dicts for an optimizer.

    Example:
        >>> groups = weight_decay_groups(torch.nn.Linear(3, 2), 0.1)
        >>> [(len(g["params"]), g["weight_decay"]) for g in groups]
        [(1, 0.1), (1, 0.0)]
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {describe(model)}")
    weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
    check_bool(skip_1d, "skip_1d")
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2 or not skip_1d]
    rest = [p for p in params if not (p.dim() >= 2 or not skip_1d)]
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def predictive_entropy(input: Tensor, *, dim: int = -1, reduction: str = "mean") -> Tensor:
    r"""The entropy of ``softmax(input)`` along ``dim``, computed in log space.

    .. math::

        H(p) = -\sum_c p_c \log p_c, \qquad p = \operatorname{softmax}(z)

    The entropy is computed as :math:`\log S - \sum_c p_c z'_c` with :math:`z' = z - \max z`
    and :math:`S = \sum_c e^{z'_c}` (``log1p`` of the sum without the largest term), and
    its gradient as :math:`-p_c (z'_c - \sum_k p_k z'_k)`: both are sums of terms of one
    sign, so confident rows keep their relative precision (``[20, 0, 0]`` in float32,
    ``[50, 0, 0]`` in float64), and a class masked with :math:`-\infty` contributes
    nothing, neither NaN to the value nor to the gradient.

    Subtracting ``beta * predictive_entropy(logits)`` from a classification loss is the
    confidence penalty of Pereyra et al. 2017, `Regularizing Neural Networks by Penalizing
    Confident Output Distributions <https://arxiv.org/abs/1701.06548>`_: it rewards spread
    predictions. The log-probabilities come from ``log_softmax``, so logits up to
    :math:`\pm 10^4` give finite values and gradients (``softmax(z).log()`` gives NaN).

    Args:
        input: logits, with the classes along ``dim``.
        dim: the class dimension. Default: ``-1``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` over the other dimensions.
            Default: ``"mean"``.

    Shape:
        - Input: ``(*, C, *)``, ``C >= 1`` along ``dim``.
        - Output: a scalar, or the input's shape without ``dim`` with ``"none"``.

    Returns:
        The entropy in nats, between 0 and :math:`\log C`, computed in float32 (float64 for
        float64 logits) and returned in the input's dtype.

    Example:
        >>> predictive_entropy(torch.zeros(2, 4))  # uniform: log 4
        tensor(1.3863)
        >>> predictive_entropy(torch.tensor([[1e4, 0.0]]))  # certain
        tensor(0.)
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"`input` must be a tensor of logits, got {describe(input)}")
    if not input.is_floating_point():
        raise TypeError(f"`input` must hold floating-point logits, got {input.dtype}")
    if isinstance(dim, bool):
        raise TypeError(f"`dim` must be an int, got {describe(dim)}")
    dim = check_int(dim, "dim")
    if input.dim() == 0 or not -input.dim() <= dim < input.dim():
        raise ValueError(
            f"`dim` must be a dimension of `input` (shape {tuple(input.shape)}), got {dim}"
        )
    if input.shape[dim] == 0:
        raise ValueError(f"`input` has no class along `dim`={dim} (shape {tuple(input.shape)})")
    reduction = check_reduction(reduction)
    inner = torch.promote_types(input.dtype, torch.float32)
    entropy = _Entropy.apply(input.to(inner).movedim(dim, -1))
    if reduction == "mean":
        entropy = entropy.mean()
    elif reduction == "sum":
        entropy = entropy.sum()
    return entropy.to(input.dtype)


def _entropy_parts(z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""For logits ``z`` (classes last): ``p``, the shifted logits, :math:`\log S` and
    :math:`\bar z = \sum_j p_j z'_j`, every term free of cancellation.

    With :math:`z' = z - \max z` (so :math:`z'_j \le 0`) and :math:`S = \sum_j e^{z'_j}`,
    :math:`\log S` is ``log1p`` of the sum without the largest entry, whose
    :math:`e^0 = 1` would swallow it. Masked (:math:`-\infty`) entries have
    :math:`p_j = 0` and are zeroed before any product, so no :math:`0 \cdot \infty`.
    """
    top = z.detach().amax(dim=-1, keepdim=True)
    shifted = z - top
    e = shifted.exp()
    first = torch.zeros_like(e, dtype=torch.bool).scatter_(
        -1, shifted.detach().argmax(dim=-1, keepdim=True), True
    )
    # expm1 of the largest entry is 0 but keeps its derivative (second derivatives)
    rest = torch.where(first, torch.expm1(shifted), e).sum(dim=-1, keepdim=True)
    log_s = torch.log1p(rest)
    p = e / log_s.exp()
    present = p > 0
    safe = torch.where(present, shifted, torch.zeros_like(shifted))
    return p, safe, log_s, (p * safe).sum(dim=-1, keepdim=True)


class _Entropy(torch.autograd.Function):
    r""":math:`H = \log S - \bar z` and :math:`\partial H / \partial z_j = -p_j (z'_j - \bar z)`.

    Both forms are sums of terms of one sign: :math:`\log S \ge 0` and
    :math:`-\bar z \ge 0`; in the gradient, :math:`\log p_j + H = z'_j - \bar z`
    exactly, so the cancellation of :math:`\log p_j + H` for a confident row
    (:math:`-4 \cdot 10^{-9} + 8.7 \cdot 10^{-8}` for logits ``[20, 0, 0]``) never
    happens. The backward pass is made of differentiable operations on the saved
    logits, so second derivatives are right too.
    """

    @staticmethod
    def forward(ctx: Any, z: Tensor) -> Tensor:
        ctx.save_for_backward(z)
        _, _, log_s, mean_z = _entropy_parts(z)
        return (log_s - mean_z).squeeze(-1)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (z,) = ctx.saved_tensors
        p, safe, _, mean_z = _entropy_parts(z)
        return -grad.unsqueeze(-1) * p * (safe - mean_z)
