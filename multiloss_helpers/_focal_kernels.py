r"""The fused kernels behind :mod:`multiloss_helpers.losses` (private: no public API here).

Both focal losses are computed by a custom ``torch.autograd.Function`` whose backward pass
is the analytic gradient written in terms of bounded quantities. The textbook form
``(1 - p_t) ** gamma * ce`` differentiated by autograd is not stable: for ``gamma < 1`` the
derivative of the power is infinite where a sample is classified with certainty (``p_t``
rounds to 1), and ``0 * inf`` gives NaN, although the true gradient there is 0.

Second derivatives (``create_graph=True``, e.g. a gradient penalty) take another route: the
backward pass then builds the same analytic gradient out of differentiable torch
operations, so autograd can differentiate it again. The fast path saves work only when no
graph of the gradient is requested.

:func:`multiclass_focal` and :func:`binary_focal` are the entry points; they expect
arguments that the public functions in ``losses.py`` have already checked.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["binary_focal", "multiclass_focal"]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other floating dtype is computed in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _reduce(loss: Tensor, reduction: str, denominator: Tensor | None = None) -> Tensor:
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    if denominator is None:
        return total / loss.numel() if loss.numel() else total * float("nan")
    return total / denominator


def _powers(base: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    r"""``base ** gamma`` and ``gamma * base ** (gamma - 1)`` for ``base`` in ``[0, 1]``.

    Differentiable and finite everywhere: for ``gamma < 1`` the second factor is
    computed on ``base`` clamped at the smallest normal number, which keeps every
    product ``gamma * base ** (gamma - 1) * d(base)`` bounded because the derivative
    ``d(base)`` is at most ``base`` itself in both focal losses.
    """
    positive = base > 0
    safe = torch.where(positive, base, torch.ones_like(base))
    scale = torch.where(positive, safe.pow(gamma), torch.zeros_like(base) + (gamma == 0))
    if gamma >= 1:
        slope = gamma * base.pow(gamma - 1) if gamma != 1 else torch.ones_like(base)
    else:
        slope = gamma * safe.clamp_min(torch.finfo(base.dtype).tiny).pow(gamma - 1)
    return scale, slope


# --------------------------------------------------------------------------- multi-class
def _focal_input_grad(logits: Tensor, target: Tensor, gamma: float, grad: Tensor) -> Tensor:
    """The focal loss's gradient in differentiable operations, for double backward."""
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    log_pt = log_prob.gather(1, target.unsqueeze(1)).squeeze(1)
    one_minus_pt = -torch.expm1(log_pt)
    scale, _ = _powers(one_minus_pt, gamma)
    tiny = torch.finfo(logits.dtype).tiny
    # log(p_t) / (1 - p_t) tends to -1 as p_t -> 1; where 1 - p_t is 0 the scale is 0 too
    ratio = log_pt / one_minus_pt.clamp_min(tiny)
    d_log_pt = grad * scale * (gamma * torch.exp(log_pt) * ratio - 1.0)
    onehot = torch.zeros_like(logits).scatter_(1, target.unsqueeze(1), 1.0)
    return d_log_pt.unsqueeze(1) * (onehot - log_prob.exp())


_LOG_SOFTMAX_FROM = 128  # classes; measured on the CPU, one thread (benchmarks/focal.py)


def _d_log_pt(log_pt: Tensor, one_minus_pt: Tensor, scale: Tensor, gamma: float) -> Tensor:
    r"""dL/d(log p_t) = (1 - p_t)^gamma (gamma p_t log(p_t) / (1 - p_t) - 1), in place.

    The ratio log(p_t) / (1 - p_t) tends to -1 as p_t -> 1, and where 1 - p_t is 0 the
    scale is 0 too, so clamping the denominator keeps every factor bounded. Overwrites
    ``one_minus_pt`` (the result) and ``log_pt`` (with p_t).
    """
    tiny = torch.finfo(log_pt.dtype).tiny
    ratio = torch.div(log_pt, one_minus_pt.clamp_min_(tiny), out=one_minus_pt)
    return ratio.mul_(log_pt.exp_()).mul_(gamma).sub_(1.0).mul_(scale)


def _exp_and_log_pt(logits: Tensor, index: Tensor) -> tuple[Tensor, Tensor, Tensor, bool]:
    """``exp(x - s)`` per row, ``log p_t``, the row's normaliser, and which shift ``s`` was used.

    On the CPU the shift is the target's own logit: ``exp(x_j - x_t)`` with the target's
    entry set to 0 sums to ``rest = sum_{j != t} p_j / p_t``, so ``log p_t = -log1p(rest)``
    keeps the digits of a confident sample's tiny loss, and no row maximum is needed (at
    10 classes that reduction cost more than any other pass). Where some ``x_j - x_t``
    overflows, and on accelerators (no value is read back there), the shift is the row
    maximum, as in ``logsumexp``. Returns ``(exp, log_pt, normaliser, by_target)`` with
    ``normaliser`` ``rest`` (by the target) or ``log(sum exp)`` (by the maximum).
    """
    target_logit = logits.gather(1, index)
    if logits.device.type == "cpu":
        exp = torch.sub(logits, target_logit).exp_().scatter_(1, index, 0.0)
        # the row sums as a matrix-vector product: the BLAS kernel is about 3x faster than
        # a reduction over 10 contiguous elements per row (CPU, one thread)
        rest = torch.mv(exp, torch.ones(exp.shape[1], dtype=exp.dtype))
        if bool(torch.isfinite(rest).all()):
            return exp, torch.log1p(rest).neg_(), rest, True
    shift = logits.amax(dim=1)
    shift.masked_fill_(shift.isinf(), 0.0)  # logsumexp's convention
    exp = torch.sub(logits, shift.unsqueeze(1)).exp_()
    ones = torch.ones(exp.shape[1], dtype=exp.dtype, device=exp.device)
    log_total = torch.mv(exp, ones).log_()
    log_pt = target_logit.squeeze(1).sub_(shift).sub_(log_total)
    return exp, log_pt, log_total, False


def _few_classes(
    logits: Tensor, index: Tensor, gamma: float, need_grad: bool
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor] | None]:
    """The per-sample loss and, if asked, the buffers of the gradient, for few classes.

    One ``(M, C)`` buffer of exponentials (:func:`_exp_and_log_pt`) gives the target's
    log-probability and, scaled row by row, the gradient
    ``d (onehot(t) - softmax(x))``: it is ``exp * soft`` plus ``target`` at the target
    class, with ``(exp, soft, target)`` the returned buffers. Every ``(M,)`` quantity is
    formed in place in a handful of buffers: on the CPU, touching fresh memory costs more
    than this arithmetic.
    """
    exp, log_pt, normaliser, by_target = _exp_and_log_pt(logits, index)
    one_minus_pt = torch.expm1(log_pt).neg_()  # 1 - p_t without cancellation
    scale = one_minus_pt.pow(gamma)
    loss = torch.mul(scale, log_pt).neg_()
    if not need_grad:
        return loss, None
    if by_target:  # exp holds p_j / p_t off the target and 0 on it
        target = one_minus_pt.clone()  # d (1 - p_t) at the target, once d is known
        d_log_pt = _d_log_pt(log_pt, one_minus_pt, scale, gamma)  # log_pt now holds p_t
        soft = log_pt.mul_(d_log_pt).neg_()  # -d p_t
        return loss, (exp, soft, target.mul_(d_log_pt))
    d_log_pt = _d_log_pt(log_pt, one_minus_pt, scale, gamma)
    soft = normaliser.neg_().exp_().mul_(d_log_pt).neg_()  # -d / sum(exp)
    return loss, (exp, soft, d_log_pt)


class _FocalFunction(torch.autograd.Function):
    """Per-sample, unweighted multi-class focal loss on ``(M, C)`` logits.

    The gradient ``d (onehot(t) - softmax(x))`` with ``d = dL/d(log p_t)`` is analytic.
    With few classes (:func:`_few_classes`) the forward pass keeps one buffer of
    exponentials and the per-sample factors, and the first backward pass turns that
    buffer into the gradient in place: one ``(M, C)`` buffer for the pair, where
    ``F.cross_entropy`` fills three, no row maximum on the CPU, and no ``log_softmax``
    kernel, whose speed at few classes depends on the CPU's vector width (at 65536 x 10,
    one thread, AVX-512 runs it about 6x slower than AVX2). With many classes the fused
    ``log_softmax`` and its fused backward are cheaper. Class weights and masks are
    applied outside, by autograd, so that a learnable ``weight`` gets its gradient.
    """

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, target: Tensor, gamma: float, grad_enabled: bool
    ) -> Tensor:
        ctx.gamma = gamma
        ctx.save_for_backward(logits, target)
        index = target.unsqueeze(1)
        need_grad = grad_enabled and ctx.needs_input_grad[0]
        if logits.shape[1] < _LOG_SOFTMAX_FROM:
            loss, ctx.buffers = _few_classes(logits, index, gamma, need_grad)
            return loss
        log_prob = torch.log_softmax(logits, dim=1)
        log_pt = log_prob.gather(1, index).squeeze(1)
        one_minus_pt = torch.expm1(log_pt).neg_()
        scale = one_minus_pt.pow(gamma)
        loss = torch.mul(scale, log_pt).neg_()
        ctx.buffers = (log_prob, _d_log_pt(log_pt, one_minus_pt, scale, gamma))
        return loss

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, None, None, None]:
        logits, target = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a gradient autograd can differentiate
            return _focal_input_grad(logits, target, ctx.gamma, grad_output), None, None, None
        index = target.unsqueeze(1)
        if logits.shape[1] >= _LOG_SOFTMAX_FROM:  # the fused backward, as F.cross_entropy's
            log_prob, d_log_pt = ctx.buffers
            upstream = torch.zeros_like(log_prob)
            upstream.scatter_(1, index, (d_log_pt * grad_output).unsqueeze(1))
            grad = torch._log_softmax_backward_data(upstream, log_prob, 1, log_prob.dtype)
            return grad, None, None, None
        buffers, ctx.buffers = ctx.buffers, None  # used up in place: a second backward
        if buffers is None:  # through a retained graph forms them again
            buffers = _few_classes(logits, index, ctx.gamma, True)[1]
        exp, soft, target_part = cast(tuple[Tensor, Tensor, Tensor], buffers)
        grad = exp.mul_(soft.mul_(grad_output).unsqueeze(1))
        grad.scatter_add_(1, index, target_part.mul_(grad_output).unsqueeze(1))
        return grad, None, None, None


def multiclass_focal(
    input: Tensor,
    target: Tensor,
    gamma: float,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    *,
    has_ignored: bool = True,
) -> Tensor:
    """:func:`multiloss_helpers.focal_loss` on arguments that have passed its checks.

    ``has_ignored=False`` says that no target equals ``ignore_index`` (the checks know it
    on the CPU), which spares a pass over the targets.
    """
    num_classes = input.shape[1]
    target = target.long()  # gather and cross_entropy take int64 indices (int8, uint8 too)
    dtype = _compute_dtype(input.dtype)
    x = input.to(dtype)
    w = None if weight is None else weight.to(dtype)
    if gamma == 0.0 and (w is None or not w.requires_grad):
        if has_ignored:  # NaN or inf logits in an ignored row must not reach the gradient
            x = x.masked_fill((target == ignore_index).unsqueeze(1), 0.0)
        loss = F.cross_entropy(x, target, weight=w, ignore_index=ignore_index, reduction=reduction)
        return loss.to(input.dtype)
    logits = x.movedim(1, -1).reshape(-1, num_classes)
    flat_target = target.reshape(-1)
    valid = None
    if has_ignored:
        valid = flat_target != ignore_index
        logits = logits.masked_fill(~valid.unsqueeze(1), 0.0)
        flat_target = flat_target * valid  # ignored rows read class 0, then get weight 0
    loss = _FocalFunction.apply(logits, flat_target, gamma, torch.is_grad_enabled())
    sample_weight = None if w is None else w[flat_target]
    if valid is not None:
        mask = valid.to(dtype)
        sample_weight = mask if sample_weight is None else sample_weight * mask
    if sample_weight is not None:
        loss = loss * sample_weight
    if reduction == "none":
        return loss.reshape(target.shape).to(input.dtype)
    denominator = sample_weight.sum() if reduction == "mean" and sample_weight is not None else None
    return _reduce(loss, reduction, denominator=denominator).to(input.dtype)


# --------------------------------------------------------------------------- binary
def _binary_grads(x: Tensor, t: Tensor, alpha: float | None, gamma: float) -> tuple[Tensor, Tensor]:
    """dL/dx and dL/dt of the element-wise binary focal loss, in differentiable operations.

    With ``omp = 1 - p_t = lerp(sigmoid(x), sigmoid(-x), t)``, ``ce = softplus(x) - t x``
    and ``a = alpha_t``: ``L = a omp^gamma ce``. Used for double backward and for a
    target that requires grad; the fast path in ``_BinaryFocalFunction`` computes the
    same ``dL/dx`` in place.
    """
    sig, sig_neg = torch.sigmoid(x), torch.sigmoid(-x)
    # ce = -(t log s + (1 - t) log n): two terms of one sign, so a well-classified
    # element keeps its precision (x (1 - t) - logsigmoid(x) cancels for x << 0, t = 0)
    ce = -(t * F.logsigmoid(x) + (1 - t) * F.logsigmoid(-x))
    one_minus_pt = torch.lerp(sig, sig_neg, t)
    scale, _ = _powers(one_minus_pt, gamma)  # omp^gamma
    a = torch.ones_like(x) if alpha is None else t * (2 * alpha - 1) + (1 - alpha)
    # gamma omp^(gamma - 1) is written gamma omp^gamma / omp, the division falling on
    # bounded ratios (s n / omp <= 1, ce / omp): omp^(gamma - 1) itself, and the
    # derivatives autograd takes of it, overflow for a confident element (NaN in d2L/dx2)
    denominator = one_minus_pt.clamp_min(torch.finfo(x.dtype).tiny)
    ce_ratio = ce / denominator
    # d omp/dx = sig sig_neg (1 - 2t) and d ce/dx = sig - t = lerp(sig, -sig_neg, t)
    d_omp_ratio = (sig * sig_neg) / denominator * (1 - 2 * t)
    dx = a * scale * (torch.lerp(sig, -sig_neg, t) + gamma * d_omp_ratio * ce)
    # d omp/dt = sig_neg - sig, d ce/dt = -x, d a/dt = 2 alpha - 1
    dt = a * scale * (gamma * (sig_neg - sig) * ce_ratio - x)
    if alpha is not None:
        dt = dt + (2 * alpha - 1) * scale * ce
    return dx, dt


_CHUNK = 262144  # elements: best of 2**15 to 3 * 2**17 on the CPU (benchmarks/focal.py)


def _weighted_sum(ce: Tensor, weight: Tensor | float, out: Tensor | None) -> Tensor | None:
    """A chunk's ``ce * weight``: into ``out`` (returns None), else its sum (``ce`` is reused)."""
    if out is not None:
        torch.mul(ce, weight, out=out)
        return None
    if not isinstance(weight, Tensor):
        return ce.sum() * weight
    # not torch.dot: on the CPU it accumulates linearly in float32 (2e-6 relative error
    # per 2**18-element chunk, 37 ulps), where sum's cascade keeps about 1 ulp
    return ce.mul_(weight).sum()


def _binary_chunk(
    x: Tensor,
    t: Tensor,
    alpha: float | None,
    gamma: float,
    scale: float,
    grad: Tensor | None,
    out: Tensor | None,
) -> Tensor | None:
    r"""``scale`` times the loss of one flat chunk: its sum, or its elements into ``out``.

    Writes ``scale`` times dL/dx into ``grad`` (a view) unless it is None. With
    ``s = sigmoid(x)``, ``n = sigmoid(-x)``, ``u = 1 - 2t``, ``omp = 1 - p_t = lerp(s, n, t)``,
    ``ce = softplus(x) - t x`` and ``a = alpha_t``: ``L = a omp^gamma ce`` and
    ``dL/dx = a (omp^gamma (s - t) + gamma omp^(gamma - 1) s n u ce)``. Every factor is
    formed without cancellation: ``ce = relu(x) - t x + log1p(exp(-|x|))`` (the first two
    terms are exact for hard targets, and ``log1p(exp(-|x|)) = -log1p(-min(s, n))``),
    and ``omp`` and ``s - t`` are exact at ``t = 0`` and ``t = 1``.
    """
    sig = torch.sigmoid(x)
    sig_neg = torch.neg(x).sigmoid_()
    ce = torch.minimum(sig, sig_neg).neg_().log1p_()  # log sigmoid(|x|), not yet ce
    ce = torch.relu(x).addcmul_(x, t, value=-1.0).sub_(ce)
    one_minus_pt = torch.lerp(sig, sig_neg, t)  # exact at t = 0 and t = 1
    # outer * (inner * (s - t) + coef * s n u ce) is the gradient; outer * inner * ce the loss
    outer: Tensor | float = scale
    if alpha is not None:  # scale * alpha_t = scale ((1 - alpha) - (1 - 2 alpha) t)
        outer = torch.rsub(t, (1.0 - alpha) * scale, alpha=(1.0 - 2.0 * alpha) * scale)
    inner: Tensor | None = None
    coef: Tensor | float = gamma
    if gamma == 2:  # a omp^2 = (a omp) omp: one factor moves to the outside
        inner = one_minus_pt
        outer = inner * outer if isinstance(outer, float) else outer.mul_(inner)
    elif gamma == 1:
        inner = one_minus_pt
    elif gamma != 0:
        inner, coef = _powers(one_minus_pt, gamma)  # omp^gamma, gamma omp^(gamma - 1)
    if grad is not None:
        # s - t = (1 - p_t) - 2 t n: exact at t = 0 and t = 1, as the lerp it comes from
        torch.addcmul(one_minus_pt, t, sig_neg, value=-2.0, out=grad)
        if inner is not None:
            grad.mul_(inner)
            d_omp = sig.mul_(sig_neg)
            d_omp.addcmul_(d_omp, t, value=-2.0)  # d(1 - p_t)/dx = s n (1 - 2t)
            if isinstance(coef, Tensor):
                grad.addcmul_(d_omp.mul_(coef), ce)
            else:
                grad.addcmul_(d_omp, ce, value=coef)
        grad.mul_(outer)
    if inner is not None:
        ce.mul_(inner)
    return _weighted_sum(ce, outer, out)


def _binary_chunk_hard(
    x: Tensor,
    t: Tensor,
    alpha: float | None,
    gamma: float,
    scale: float,
    grad: Tensor | None,
    out: Tensor | None,
) -> Tensor | None:
    r"""``_binary_chunk`` for a chunk whose targets are all exactly 0 or 1, in fewer passes.

    With ``y = 2t - 1`` and ``z = y x``, the logit of the true class: ``p_t = sigmoid(z)``,
    ``q = 1 - p_t = sigmoid(-z)``, ``ce = softplus(-z)`` and ``L = a q^gamma ce``, so
    ``dL/dx = b q^gamma (gamma p_t ce + q)`` with ``b = -a y``, which is ``(1 - alpha) - t``
    (``1 - 2t`` without alpha), and ``a = |b|``. Every term is a product of non-negative
    factors, so nothing cancels, and ``q^gamma`` needs no ``q^(gamma - 1)``: the gradient is
    bounded for every ``gamma >= 0`` without clamping.
    """
    neg_z = torch.addcmul(x, t, x, value=-2.0)  # (1 - 2t) x = -z, exact for t in {0, 1}
    q = torch.sigmoid(neg_z)
    p_t = torch.neg(neg_z).sigmoid_()
    ce = torch.minimum(p_t, q).neg_().log1p_()  # log sigmoid(|z|), not yet ce
    ce = torch.relu(neg_z).sub_(ce)  # softplus(-z) = relu(-z) + log1p(exp(-|z|))
    if alpha is None:
        signed = torch.rsub(t, scale, alpha=2.0 * scale)  # scale (1 - 2t)
    else:
        signed = torch.rsub(t, (1.0 - alpha) * scale, alpha=scale)  # scale ((1 - alpha) - t)
    if gamma == 2:
        signed.mul_(q).mul_(q)
    elif gamma == 1:
        signed.mul_(q)
    elif gamma != 0:
        signed.mul_(q.pow(gamma))
    if grad is not None:
        torch.addcmul(q, p_t, ce, value=gamma, out=grad)
        grad.mul_(signed)
    return _weighted_sum(ce, signed.abs_(), out)  # weight: scale a q^gamma


_STAND_IN = 1e30  # for an infinite logit: its sigmoids are exactly 0 and 1, 2x is finite


def _binary_chunk_infinite(
    kernel: Any,
    x: Tensor,
    t: Tensor,
    alpha: float | None,
    gamma: float,
    scale: float,
    grad: Tensor | None,
    out: Tensor | None,
) -> Tensor | None:
    r"""``kernel`` on a chunk that may hold infinite logits, with their limits.

    The kernels form ``t x`` and ``(1 - 2t) x``, which are NaN at ``x = -inf, t = 0`` and
    ``x = inf, t = 1``, where the loss and its gradient are exactly 0. An infinite logit
    is replaced by :math:`\pm 10^{30}`, whose sigmoids are already exactly 0 and 1: the
    loss is then 0 where it is 0 in the limit, and the gradient is its limit everywhere
    (0, or :math:`-\alpha_t` times the scale on the wrong side). Where the loss of an
    infinite logit is not 0 it is infinite, and is set so. NaN logits stay NaN. Called
    only for a chunk whose loss came out non-finite (CPU), or always (accelerators).
    """
    infinite = torch.isinf(x)
    safe = torch.where(infinite, torch.full_like(x, _STAND_IN).copysign_(x), x)
    values = torch.empty_like(x) if out is None else out
    kernel(safe, t, alpha, gamma, scale, grad, values)
    values.masked_fill_(infinite & (values > 0), float("inf"))
    return None if out is not None else values.sum()


def _check_target_range(t: Tensor, whole: Tensor | None = None) -> None:
    """Raise unless every value of ``t`` lies in [0, 1]; the message describes ``whole``.

    NaN targets are named as such (their count and the first flat index): a range "from
    nan to nan" would hide what is wrong.
    """
    low, high = torch.amin(t), torch.amax(t)  # both propagate NaN; cheaper than aminmax
    if bool(low >= 0) and bool(high <= 1):  # NaN fails both comparisons
        return
    values = (t if whole is None else whole).reshape(-1)
    nan = torch.isnan(values)
    count = int(nan.sum())
    if count:
        first = int(nan.nonzero()[0, 0])
        raise ValueError(
            f"`target` values must lie in [0, 1], got values that are NaN: {count} of "
            f"{values.numel()}, the first at flat index {first} (a NaN target has no loss: "
            "drop or fill it)"
        )
    raise ValueError(
        f"`target` values must lie in [0, 1], got values from {float(values.amin())} to "
        f"{float(values.amax())}"
    )


class _BinaryFocalFunction(torch.autograd.Function):
    """Element-wise binary focal loss on logits, reduced inside.

    When only the logits need a gradient, the forward pass computes it too, from the
    sigmoids it already holds, and keeps only that: the backward pass hands it over,
    scaled in place unless the incoming gradient is the usual 1 (a second backward
    through a retained graph computes it again). For ``"mean"`` the ``1 / numel`` is
    folded into each element's weight. The work runs over chunks of ``_CHUNK``
    elements, mostly in place, so that a chunk's temporaries are reused from chunk to
    chunk while they are in cache, and no fresh memory is touched per operation (on
    the CPU, first touches of fresh pages cost more than the arithmetic). A graph of the
    gradient (``create_graph=True``) or a target that requires grad take the
    differentiable route of ``_binary_grads``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        t: Tensor,
        alpha: float | None,
        gamma: float,
        reduction: str,
        known_hard: bool,
        grad_enabled: bool,
    ) -> Tensor:
        ctx.alpha, ctx.gamma, ctx.reduction, ctx.numel = alpha, gamma, reduction, x.numel()
        ctx.known_hard = known_hard
        ctx.save_for_backward(x, t)
        # needs_input_grad ignores no_grad/inference_mode: no gradient is wanted there
        need_grad = grad_enabled and ctx.needs_input_grad[0] and not ctx.needs_input_grad[1]
        loss, ctx.fast_grad = _binary_chunks(x, t, alpha, gamma, reduction, need_grad, known_hard)
        return loss

    @staticmethod
    def backward(
        ctx: Any, grad_output: Tensor
    ) -> tuple[Tensor | None, Tensor | None, None, None, None, None, None]:
        x, t = ctx.saved_tensors
        if not torch.is_grad_enabled() and not ctx.needs_input_grad[1]:
            grad, ctx.fast_grad = ctx.fast_grad, None  # handed over, scaled in place
            if grad is None:  # a second backward through a retained graph: same arithmetic
                _, grad = _binary_chunks(
                    x, t, ctx.alpha, ctx.gamma, ctx.reduction, True, ctx.known_hard
                )
            # the usual .backward() on the reduced loss sends 1: skip that pass (CPU only,
            # where reading the value costs no device sync)
            cpu_scalar = grad_output.dim() == 0 and grad_output.device.type == "cpu"
            if cpu_scalar and bool(grad_output == 1):
                return grad, None, None, None, None, None, None
            return grad.mul_(grad_output), None, None, None, None, None, None
        if ctx.reduction == "mean":
            grad_output = grad_output / ctx.numel
        # an infinite logit takes the stand-in of _binary_chunk_infinite: dx is then its
        # limit (0, or -alpha_t), and a non-zero dt, which grows with the logit, is infinite
        infinite = torch.isinf(x)
        stand_in = torch.full_like(x, _STAND_IN).copysign(x)
        dx, dt = _binary_grads(torch.where(infinite, stand_in, x), t, ctx.alpha, ctx.gamma)
        if ctx.needs_input_grad[1]:
            dt = torch.where(infinite & (dt != 0), dt.sign() * float("inf"), dt)
        return (
            dx * grad_output if ctx.needs_input_grad[0] else None,
            dt * grad_output if ctx.needs_input_grad[1] else None,
            None,
            None,
            None,
            None,
            None,
        )


def _binary_chunks(
    x: Tensor,
    t: Tensor,
    alpha: float | None,
    gamma: float,
    reduction: str,
    need_grad: bool,
    known_hard: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """The reduced loss and, if asked, its gradient per element, chunk by chunk.

    For ``"mean"`` the factor ``1 / numel`` is folded into every element's weight, so
    that neither the loss nor the gradient needs a pass of its own to be scaled; on the
    CPU a chunk whose scaled sum is below ``2 * tiny * size`` (where subnormal products
    could have cost it digits) is summed again unscaled. On the
    CPU each chunk's targets are checked while they are in cache: ``t (1 - t)`` is
    ``>= 0`` exactly on ``[0, 1]`` (NaN fails) and ``0`` exactly at 0 and 1, and a chunk of
    hard targets takes ``_binary_chunk_hard``. After the first chunk with a soft target,
    the rest are only range-checked and take the general kernel (soft targets, as from
    label smoothing, are rarely confined to one chunk). Elsewhere nothing is read back
    to the host: only boolean targets (``known_hard``) take the hard path there.
    """
    flat_x, flat_t = x.reshape(-1), t.reshape(-1)
    numel = flat_x.numel()
    if reduction == "mean" and numel == 0:  # the mean of nothing, as torch's losses give
        return flat_x.new_full((), float("nan")), torch.zeros_like(x) if need_grad else None
    scale = 1.0 / numel if reduction == "mean" else 1.0
    grad = torch.empty_like(flat_x) if need_grad else None
    out = torch.empty_like(flat_x) if reduction == "none" else None
    check = flat_t.device.type == "cpu" and not known_hard
    spread = flat_t.new_empty(min(_CHUNK, numel)) if check else None
    probe = True
    # a tiny mean is summed again without the folded 1/numel (CPU only: a read-back)
    on_cpu = flat_x.device.type == "cpu"
    recheck = reduction == "mean" and on_cpu
    tiny = torch.finfo(flat_x.dtype).tiny
    total = flat_x.new_zeros(())
    for start in range(0, numel, _CHUNK):
        part = slice(start, start + _CHUNK)
        t_part = flat_t[part]
        hard = known_hard
        if spread is not None and probe:
            t_spread = torch.addcmul(
                t_part, t_part, t_part, value=-1.0, out=spread[: t_part.numel()]
            )
            if not bool(torch.amin(t_spread) >= 0):  # a target outside [0, 1], or NaN
                _check_target_range(flat_t)
            hard = probe = bool(torch.amax(t_spread) == 0)  # soft once: stop looking
        elif spread is not None:
            _check_target_range(t_part, whole=flat_t)
        kernel = _binary_chunk_hard if hard else _binary_chunk
        args = (
            flat_x[part],
            t_part,
            alpha,
            gamma,
            scale,
            None if grad is None else grad[part],
            None if out is None else out[part],
        )
        if not on_cpu:  # nothing is read back: infinite logits are always looked for
            chunk_sum = _binary_chunk_infinite(kernel, *args)
        else:
            chunk_sum = kernel(*args)
            # an infinite logit makes the chunk's loss non-finite (NaN or inf): only then
            # is it computed again with the limits (one scalar read, and for "none" one sum:
            # the losses are >= 0, so the sum is finite unless one of them is not, or it
            # overflows, which the look for an infinite logit then rules out)
            loss_sum = cast(Tensor, chunk_sum if out is None else out[part].sum())
            if not bool(torch.isfinite(loss_sum)) and bool(torch.isinf(args[0]).any()):
                chunk_sum = _binary_chunk_infinite(kernel, *args)
                if chunk_sum is not None:
                    total += chunk_sum
                continue
        if chunk_sum is not None:
            if recheck and bool(chunk_sum < 2 * tiny * t_part.numel()):
                # every element's share of the mean is near or below the dtype's normal
                # range, where the folded 1/numel costs digits: sum this chunk unscaled
                # without ``out`` the kernel returns the chunk's sum
                unscaled = cast(Tensor, kernel(flat_x[part], t_part, alpha, gamma, 1.0, None, None))
                chunk_sum = unscaled * scale
            total += chunk_sum
    grad = None if grad is None else grad.view(x.shape)
    return (total if out is None else out.view(x.shape)), grad


def binary_focal(
    input: Tensor, target: Tensor, alpha: float | None, gamma: float, reduction: str
) -> Tensor:
    """:func:`multiloss_helpers.binary_focal_loss` on arguments that have passed its checks."""
    dtype = _compute_dtype(input.dtype)
    known_hard = target.dtype == torch.bool
    x, t = input.to(dtype), target.to(dtype)
    loss = None
    # plain binary cross-entropy; torch's gives NaN for an infinite logit whose loss is 0
    # (0 * inf), so a non-finite result with infinite logits takes the kernels, which
    # give the limits; on accelerators (no read-back) they always do
    if alpha is None and gamma == 0.0 and t.device.type == "cpu":
        if t.numel() and not known_hard:
            _check_target_range(t)
        loss = F.binary_cross_entropy_with_logits(x, t, reduction=reduction)
        if not bool(torch.isfinite(loss).all()) and bool(torch.isinf(x).any()):
            loss = None
    if loss is None:  # checks the targets itself, chunk by chunk
        loss = _BinaryFocalFunction.apply(
            x, t, alpha, gamma, reduction, known_hard, torch.is_grad_enabled()
        )
    return loss.to(input.dtype)
