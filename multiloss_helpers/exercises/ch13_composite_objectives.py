r"""Checks for the exercises of chapter 13, *Composite objectives: a VAE's KL term and
distillation's soft targets*."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributions
import torch.distributions.kl
from torch import Tensor

from ..composite import distillation_loss, gaussian_kl
from ._harness import (
    CheckResult,
    close,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    public,
    run_check,
)

__all__ = [
    "check_distillation",
    "check_free_bits_kl",
    "check_gaussian_kl",
]


def _kl_cases() -> list[tuple[str, Tensor, Tensor]]:
    """``(where, mu, logvar)``: moderate values, more dimensions, extreme log-variances."""
    g = gen(13)
    cases = [
        ("on a (6, 4) batch", torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)),
        (
            "on a (3, 2, 5) batch (sum over every dimension but the first)",
            torch.randn(3, 2, 5, generator=g),
            torch.randn(3, 2, 5, generator=g),
        ),
        (
            "at the prior (mu = 0, logvar = 0)",
            torch.zeros(4, 3),
            torch.zeros(4, 3),
        ),
    ]
    mu = torch.randn(2, 3, generator=g)
    cases.append(
        (
            "with very negative log-variances (logvar = -1e4)",
            mu,
            torch.tensor([[-1e4, 0.5, -2.0], [-1e4, -1e4, 1.0]]),
        )
    )
    cases.append(("with large log-variances (logvar = 50)", mu, torch.full((2, 3), 50.0)))
    return cases


def check_gaussian_kl(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(mu, logvar)`` is KL(N(mu, exp(logvar)) || N(0, I)), summed over every dimension
    but the first and averaged over the batch (a 0-d tensor).

    Checked on batches of two and three dimensions, at the prior, and with log-variances of
    -1e4 and 50: the value and the gradients with respect to ``mu`` and ``logvar`` must be
    finite and equal to the reference's. ``mlh.gaussian_kl`` and ``torch.distributions``
    (``kl_divergence``, ``Normal``) are not allowed.
    """

    def trials() -> None:
        forbidden = (
            public("gaussian_kl"),
            (torch.distributions, "kl_divergence"),
            (torch.distributions.kl, "kl_divergence"),
            (torch.distributions, "Normal"),
        )
        for where, mu, logvar in _kl_cases():
            ref_mu, ref_lv = mu.double().requires_grad_(True), logvar.double().requires_grad_(True)
            want = gaussian_kl(ref_mu, ref_lv)
            want_grads = torch.autograd.grad(want, [ref_mu, ref_lv])
            mine_mu, mine_lv = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
            with forbid(*forbidden):
                got = fn(mine_mu, mine_lv)
            per_element = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).mean()
            expect(
                close(per_element, want.detach().float(), rtol=1e-4)
                or not close(got, per_element, rtol=1e-4),
                f"{where}: your value is an average over every element; the KL of one "
                "sample adds up its dimensions",
            )
            per_sample = gaussian_kl(mu, logvar, reduction="none")
            expect_close(
                got, want.detach().float(), where, rtol=1e-4, atol=1e-5, elements=per_sample
            )
            expect_grads(
                got,
                [mine_mu, mine_lv],
                [w.float() for w in want_grads],
                f"your KL {where}",
                rtol=1e-4,
                atol=1e-6,
            )

    return run_check(
        "gaussian_kl",
        fn,
        trials,
        "values and gradients right, finite for log-variances from -1e4 to 50",
    )


def check_free_bits_kl(fn: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(mu, logvar, free_bits)`` is the free-bits KL of ``(N, D)`` codes:
    :math:`\sum_j \max(\lambda, \overline{\mathrm{KL}}_j)`, where
    :math:`\overline{\mathrm{KL}}_j` is latent dimension ``j``'s KL averaged over the batch
    and :math:`\lambda` = ``free_bits``.

    Checked with ``free_bits`` 0 (the plain KL), 0.5 and 2 on codes whose dimensions carry
    very different KLs, in value and in gradient: a dimension below :math:`\lambda` gets no
    gradient, one above it gets the KL's.
    """

    def trials() -> None:
        g = gen(15)
        scales = torch.tensor([0.1, 0.5, 1.5, 3.0])
        mu = torch.randn(16, 4, generator=g) * scales
        logvar = 0.3 * torch.randn(16, 4, generator=g) - scales
        for free_bits in (0.0, 0.5, 2.0):
            where = f"on a (16, 4) batch with free_bits={free_bits}"
            ref_mu, ref_lv = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
            per_dim = gaussian_kl(ref_mu.T, ref_lv.T, reduction="none") / len(mu)
            want = per_dim.clamp(min=free_bits).sum()
            want_grads = torch.autograd.grad(want, [ref_mu, ref_lv])
            mine_mu, mine_lv = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
            got = fn(mine_mu, mine_lv, free_bits)
            expect_close(got, want.detach(), where, rtol=1e-4, atol=1e-6)
            expect_grads(
                got, [mine_mu, mine_lv], want_grads, f"your loss {where}", rtol=1e-4, atol=1e-7
            )

    return run_check(
        "free_bits_kl",
        fn,
        trials,
        "each dimension's batch-mean KL floored at free_bits, in value and gradient",
    )


def _distillation_cases() -> list[tuple[float, float]]:
    """``(temperature, alpha)``: each case isolates one part of the loss."""
    return [(1.0, 0.0), (1.0, 1.0), (4.0, 1.0), (0.5, 1.0), (3.0, 0.3), (2.0, 0.5)]


def check_distillation(fn: Callable[[Tensor, Tensor, Tensor, float, float], Tensor]) -> CheckResult:
    r"""``fn(student_logits, teacher_logits, target, temperature, alpha)`` is Hinton et al.'s
    distillation loss: ``alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T))``,
    the KL summed over classes and averaged over the batch, plus
    ``(1 - alpha) * cross_entropy(student_logits, target)``.

    Checked for several temperatures and ``alpha`` (0: the hard term alone; 1: the soft
    term alone), in value and in gradient with respect to the student's logits; the
    teacher's logits require grad and must receive none. ``mlh.distillation_loss`` and
    ``mlh.DistillationLoss`` are not allowed.
    """

    def trials() -> None:
        forbidden = (public("distillation_loss"), public("DistillationLoss"))
        g = gen(14)
        student = 2 * torch.randn(8, 5, generator=g)
        teacher = 3 * torch.randn(8, 5, generator=g)
        target = torch.randint(5, (8,), generator=g)
        for temperature, alpha in _distillation_cases():
            where = f"with temperature={temperature}, alpha={alpha}"
            ref = student.clone().requires_grad_(True)
            want = distillation_loss(ref, teacher, target, temperature=temperature, alpha=alpha)
            (want_grad,) = torch.autograd.grad(want, ref)
            mine = student.clone().requires_grad_(True)
            teacher_in = teacher.clone().requires_grad_(True)
            with forbid(*forbidden):
                got = fn(mine, teacher_in, target.clone(), temperature, alpha)
            expect_close(got, want.detach(), where, rtol=1e-4, atol=1e-6)
            expect_grads(got, [mine], [want_grad], f"your loss {where}", rtol=1e-4, atol=1e-6)
            if got.requires_grad:
                (teacher_grad,) = torch.autograd.grad(got, teacher_in, allow_unused=True)
                expect(
                    teacher_grad is None or not bool(teacher_grad.any()),
                    f"{where} the teacher's logits receive a gradient: the teacher must "
                    "stay fixed while the student learns",
                )

    return run_check(
        "distillation",
        fn,
        trials,
        "soft and hard terms right for every temperature, and the teacher gets no gradient",
    )
