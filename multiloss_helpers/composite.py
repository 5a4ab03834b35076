r"""Losses that are sums of different kinds of terms: a VAE's KL term, distillation.

A variational autoencoder adds a Gaussian KL divergence to its reconstruction loss; a
distilled student adds a soft KL towards its teacher to its hard cross-entropy. Both terms
are written here once, stable in low precision and checked at the door.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import check_float, check_labels, check_reduction, describe

__all__ = ["DistillationLoss", "distillation_loss", "gaussian_kl"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    r"""float32 for half-precision inputs, the input's dtype otherwise."""
    return torch.float32 if dtype in _LOW_PRECISION else dtype


def _check_floating(value: Any, name: str, what: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a tensor of {what}, got {describe(value)}")
    if not value.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor of {what}, got {value.dtype}")
    return value


def _check_pair(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    r"""Same shape, dtype and device for two tensors that are used element by element."""
    if a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    if a.dtype != b.dtype:
        raise TypeError(
            f"`{name_a}` and `{name_b}` must have the same dtype, got {a.dtype} and {b.dtype}"
        )
    if a.device != b.device:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must be on one device, got {a.device} and {b.device}"
        )


# 1 / (2 n!) for n = 2..19: the Taylor coefficients of (e^v - 1 - v) / 2
_HALF_EXP_SERIES = tuple(0.5 / math.factorial(n) for n in range(2, 20))
# terms kept per dtype: for |v| < 1 the first term left out, |v|^(n+1) / (2 (n+1)!), is
# below the dtype's rounding relative to the sum (at least v^2 / 2 e^-1 there)
_SERIES_TERMS = {torch.float64: 18, torch.float32: 10}


def _half_exp_minus_one_minus(v: Tensor) -> Tensor:
    r""":math:`(e^v - 1 - v) / 2` without cancellation, within a few ulp everywhere.

    For :math:`|v| < 1` the Taylor series :math:`\sum_{n \ge 2} v^n / (2\, n!)` (Horner,
    every term kept that float32 or float64 can see); beyond, ``expm1(v) - v``, which
    loses at most about one bit there (:math:`e^{-1} - 1 + 1`). A shorter series cut at
    :math:`|v| = 0.01` left ``expm1(v) - v`` to cancel just above the cut (140 ulp in
    float32) and was 1.7e-8 off in float64 below it.
    """
    small = v.abs() < 1.0
    s = v.clamp(-1.0, 1.0)  # keeps the unused branch (and its gradient) finite
    coefficients = _HALF_EXP_SERIES[: _SERIES_TERMS.get(v.dtype, 10)]
    poly = torch.full_like(s, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        poly = poly * s + c
    series = s.square() * poly
    return torch.where(small, series, 0.5 * (torch.expm1(v) - v))


def gaussian_kl(mu: Tensor, logvar: Tensor, *, reduction: str = "mean") -> Tensor:
    r"""KL divergence from a diagonal Gaussian to the standard normal, per sample.

    .. math::

        \operatorname{KL}\bigl(\mathcal N(\mu, e^{v}) \,\|\, \mathcal N(0, I)\bigr)
        = \frac12 \sum_j \left(\mu_j^2 + e^{v_j} - 1 - v_j\right)

    with :math:`v = \log \sigma^2` (``logvar``), summed over every dimension but the first
    (the batch), then reduced over the batch. This is the regulariser of a variational
    autoencoder's loss, reconstruction :math:`+ \beta \cdot \operatorname{KL}` (Kingma and
    Welling 2013, "Auto-Encoding Variational Bayes",
    `arXiv:1312.6114 <https://arxiv.org/abs/1312.6114>`_, with :math:`\beta = 1`).

    :math:`e^{v} - 1 - v` is computed as ``expm1(v) - v``, and by its Taylor series for
    :math:`|v| < 1`, which keeps its relative precision (a few ulp) near :math:`v = 0`
    where the term vanishes. Values and gradients are finite wherever
    :math:`e^{v}` is representable in float32 (:math:`v` up to about 88), e.g. for
    ``logvar=-1e4``. Half-precision inputs are computed and reduced in float32 and returned
    in their own dtype.

    Args:
        mu: the posterior means :math:`\mu`, shape ``(N, *)``.
        logvar: the posterior log-variances :math:`\log\sigma^2`, the shape of ``mu``.
        reduction: ``"mean"`` (over the batch), ``"sum"`` or ``"none"`` (one value per
            sample). Default: ``"mean"``.

    Shape:
        - mu, logvar: ``(N, *)``, at least one dimension.
        - Output: scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> mu = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
        >>> logvar = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
        >>> gaussian_kl(mu, logvar, reduction="none")
        tensor([0., 1.])
        >>> gaussian_kl(mu, logvar)
        tensor(0.5000)
    """
    _check_floating(mu, "mu", "posterior means")
    _check_floating(logvar, "logvar", "posterior log-variances")
    if mu.dim() < 1:
        raise ValueError(
            f"`mu` must have a batch dimension, shape (N, *), got shape {tuple(mu.shape)}"
        )
    _check_pair(mu, logvar, "mu", "logvar")
    check_reduction(reduction)
    dtype = _compute_dtype(mu.dtype)
    m, v = mu.to(dtype), logvar.to(dtype)
    per_element = 0.5 * m.square() + _half_exp_minus_one_minus(v)
    per_sample = per_element.flatten(1).sum(dim=1) if mu.dim() > 1 else per_element
    if reduction == "none":
        return per_sample.to(mu.dtype)
    total = per_sample.sum()
    if reduction == "mean":
        total = total / len(mu) if len(mu) else total * float("nan")
    return total.to(mu.dtype)


_TEMPERATURES = (1e-4, 1e4)


def _check_temperature(temperature: Any) -> float:
    r"""A temperature in :math:`[10^{-4}, 10^4]`, where the soft term is float32-precise.

    Measured against float64 with logits of scale 0.01 to 1000: relative error below
    1e-6 from :math:`T = 10^{-5}` to :math:`10^{15}`. Far outside, ``logits / T`` or
    :math:`T^2` overflows (NaN at :math:`T = 10^{-40}`); Hinton et al. use 1 to 20.
    """
    low, high = _TEMPERATURES
    return check_float(temperature, "temperature", minimum=low, maximum=high)


def _check_distillation_args(
    student: Any, teacher: Any, target: Any, temperature: Any, alpha: Any
) -> tuple[float, float]:
    _check_floating(student, "student_logits", "logits")
    _check_floating(teacher, "teacher_logits", "logits")
    if student.dim() != 2:
        raise ValueError(
            f"`student_logits` must have shape (N, C), got shape {tuple(student.shape)}"
        )
    _check_pair(student, teacher, "student_logits", "teacher_logits")
    check_labels(target, "target", dim=1)
    if target.shape[0] != student.shape[0]:
        raise ValueError(
            f"`target` must have shape ({student.shape[0]},), one class per row of "
            f"`student_logits`, got {tuple(target.shape)}"
        )
    if target.device != student.device:
        raise ValueError(
            f"`student_logits` and `target` must be on one device, got {student.device} and "
            f"{target.device}"
        )
    if target.device.type == "cpu" and target.numel():  # a cheap read on the CPU only
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= student.shape[1]:
            raise ValueError(
                f"`target` holds class index {low if low < 0 else high}, outside "
                f"[0, {student.shape[1]})"
            )
    temperature = _check_temperature(temperature)
    alpha = check_float(alpha, "alpha", minimum=0.0, maximum=1.0)
    return temperature, alpha


def _scaled_log_softmax(logits: Tensor, temperature: float) -> Tensor:
    r"""``log_softmax(logits / T)`` that does not overflow for logits near the dtype's maximum.

    The row maximum (detached: the result does not depend on it) is taken out before the
    division, in halves so that the difference itself cannot overflow; a gap too large
    for the dtype after the division becomes :math:`-\infty`, whose probability is 0 anyway.
    """
    top = logits.detach().amax(dim=1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    return F.log_softmax((logits / 2 - top / 2) * (2.0 / temperature), dim=1)


def _soft_kl(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    r"""KL(softmax(teacher / T) || softmax(student / T)) per row, precise when close.

    With :math:`q` the student's softened probabilities and :math:`e` the scaled logit
    gap :math:`(t - s) / T` minus its :math:`q`-mean, the KL of a row is exactly
    :math:`\sum_j q_j \operatorname{expm1}(e_j) e_j / (1 + S) - \operatorname{log1p}(S)`
    with :math:`S = \sum_j q_j (e^{e_j} - 1 - e_j)`. Every term is of order :math:`e^2`, so
    nothing cancels for close distributions, where the difference of two log-softmaxes
    loses everything below float32 rounding (logits of scale 0.01 at :math:`T = 100`:
    133 % off). Other rows use :math:`\sum_j p_j (\log p_j - \log q_j)` with
    :math:`0 \log 0 = 0`, as ``F.kl_div`` does: a class that the teacher masks with
    :math:`-\infty` adds nothing (and no NaN), also when the student masks it too.
    """
    log_q = _scaled_log_softmax(student, temperature)
    log_p = _scaled_log_softmax(teacher, temperature)
    p = log_p.exp()
    present = p > 0  # 0 log 0 = 0; the masked entries are zeroed before any product
    zero = torch.zeros((), dtype=log_q.dtype, device=log_q.device)
    log_ratio = torch.where(present, log_p, zero) - torch.where(present, log_q, zero)
    plain = (p * log_ratio).sum(dim=1)
    # the precise form, on rows whose logit gap is finite (others get zeros, unused)
    with torch.no_grad():
        finite = torch.isfinite((teacher - student) / temperature).all(dim=1, keepdim=True)
    s_ok = torch.where(finite, student, zero)
    t_ok = torch.where(finite, teacher, zero)
    q = torch.where(finite, log_q, zero).exp()
    gap = (t_ok - s_ok) / temperature
    gap = gap - (q * gap).sum(dim=1, keepdim=True)
    close = finite.squeeze(1) & (gap.abs() < 1.0).all(dim=1)
    gap = gap.clamp(-1.0, 1.0)  # keeps the unused branch (and its gradient) finite
    s = 2.0 * (q * _half_exp_minus_one_minus(gap)).sum(dim=1)
    precise = (q * torch.expm1(gap) * gap).sum(dim=1) / (1.0 + s) - torch.log1p(s)
    return torch.where(close, precise, plain)


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    target: Tensor,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    reduction: str = "mean",
) -> Tensor:
    r"""Knowledge distillation: a soft KL towards the teacher plus the hard cross-entropy.

    .. math::

        \mathcal L = \alpha\, T^2\, \frac1N \sum_{i=1}^N
        \operatorname{KL}\bigl(\operatorname{softmax}(t_i / T) \,\|\,
        \operatorname{softmax}(s_i / T)\bigr)
        + (1 - \alpha)\, \operatorname{CE}(s, y)

    with student logits :math:`s`, teacher logits :math:`t`, temperature :math:`T` and
    class targets :math:`y` (Hinton et al. 2015, "Distilling the Knowledge in a Neural
    Network", `arXiv:1503.02531 <https://arxiv.org/abs/1503.02531>`_). The KL is summed over
    classes and averaged over the batch (``batchmean``, the true KL per sample), from
    ``log_softmax`` of both sides, so it stays finite for large logits; for close
    distributions (a scaled logit gap below 1) from a form in which nothing cancels, so
    it keeps float32 precision for small logits and large :math:`T` too.

    **Why** :math:`T^2`. The soft term's gradient with respect to a student logit is
    :math:`(p^T_s - p^T_t) / (N T)`, and for large :math:`T` the difference of the softened
    probabilities itself shrinks like :math:`1/T`: without the factor the soft gradients fall
    like :math:`1/T^2`, and changing :math:`T` would silently reweight the two terms.

    The teacher receives **no gradient**: its logits are detached inside, so passing a
    teacher's output that requires grad is safe. With ``alpha=0`` the result *is*
    ``F.cross_entropy(student_logits, target)``; with ``alpha=1`` it is the soft term alone.
    Half-precision logits are computed in float32 and the result is returned in their dtype.
    A class that the teacher masks with :math:`-\infty` has probability 0 and adds nothing
    to the KL (:math:`0 \log 0 = 0`, as in ``F.kl_div``), also when the student masks it
    too; logits up to the float32 maximum give finite values and gradients.

    Args:
        student_logits: the student's logits :math:`s`, shape ``(N, C)``.
        teacher_logits: the teacher's logits :math:`t`, the shape of ``student_logits``.
        target: class indices in ``[0, C)``, shape ``(N,)``.
        temperature: the softening temperature :math:`T \in [10^{-4}, 10^4]`.
            Default: ``2.0``.
        alpha: the soft term's share :math:`\alpha \in [0, 1]`. Default: ``0.5``.
        reduction: ``"mean"``: the formula above, the mean over the batch of each
            sample's loss (the KL summed over classes, i.e. ``batchmean``, and the mean
            cross-entropy); ``"sum"``: the sum of the samples' losses; ``"none"``: one
            loss per sample, :math:`\alpha T^2 \operatorname{KL}_i + (1 - \alpha)
            \operatorname{CE}_i`. Default: ``"mean"``.

    Shape:
        - student_logits, teacher_logits: ``(N, C)``.
        - target: ``(N,)``, any integer dtype.
        - Output: scalar, or ``(N,)`` for ``reduction="none"``.

    Example:
        >>> student = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]], requires_grad=True)
        >>> teacher = torch.tensor([[3.0, 1.0, -2.0], [0.0, 2.0, 0.0]], requires_grad=True)
        >>> target = torch.tensor([0, 1])
        >>> loss = distillation_loss(student, teacher, target, temperature=2.0, alpha=0.5)
        >>> loss
        tensor(0.3017, grad_fn=<AddBackward0>)
        >>> loss.backward()
        >>> teacher.grad is None
        True
        >>> torch.equal(distillation_loss(student, teacher, target, alpha=0.0),
        ...             F.cross_entropy(student, target))
        True
    """
    temperature, alpha = _check_distillation_args(
        student_logits, teacher_logits, target, temperature, alpha
    )
    check_reduction(reduction)
    dtype = _compute_dtype(student_logits.dtype)
    student = student_logits.to(dtype)
    target = target.long()  # F.cross_entropy takes int64 (or uint8) class indices only
    parts: list[Tensor] = []
    if alpha > 0.0:  # skipped at alpha = 0, so that the result is exactly F.cross_entropy
        soft = _soft_kl(student, teacher_logits.detach().to(dtype), temperature)
        if reduction == "mean":
            soft = soft.sum() / student.shape[0]
        elif reduction == "sum":
            soft = soft.sum()
        parts.append((alpha * temperature**2) * soft)
    if alpha < 1.0:
        hard = F.cross_entropy(student, target, reduction=reduction)
        parts.append(hard if alpha == 0.0 else (1.0 - alpha) * hard)
    total = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    return total.to(student_logits.dtype)


class DistillationLoss(nn.Module):
    r"""The module form of :func:`distillation_loss`: it holds its hyperparameters.

    Args:
        temperature: the softening temperature :math:`T \in [10^{-4}, 10^4]`.
            Default: ``2.0``.
        alpha: the soft term's share :math:`\alpha \in [0, 1]`. Default: ``0.5``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``, as in :func:`distillation_loss`.
            Default: ``"mean"``.

    Example:
        >>> criterion = DistillationLoss(temperature=4.0, alpha=0.9)
        >>> criterion
        DistillationLoss(temperature=4.0, alpha=0.9)
        >>> student, teacher = torch.zeros(2, 3), torch.zeros(2, 3)
        >>> criterion(student, teacher, torch.tensor([0, 2])).shape
        torch.Size([])
    """

    def __init__(
        self, *, temperature: float = 2.0, alpha: float = 0.5, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.temperature = _check_temperature(temperature)
        self.alpha = check_float(alpha, "alpha", minimum=0.0, maximum=1.0)
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, target: Tensor) -> Tensor:
        r"""The loss of :func:`distillation_loss` with this module's hyperparameters."""
        return distillation_loss(
            student_logits,
            teacher_logits,
            target,
            temperature=self.temperature,
            alpha=self.alpha,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        text = f"temperature={self.temperature}, alpha={self.alpha}"
        return text if self.reduction == "mean" else text + f", reduction={self.reduction!r}"
