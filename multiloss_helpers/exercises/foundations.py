r"""Checks for the exercises of the Foundations part (chapters 1 and 2)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._harness import (
    CheckResult,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    run_check,
)

__all__ = [
    "check_bce_with_logits",
    "check_mean_squared_error",
    "check_per_sample_losses",
    "check_weighted_epoch_mean",
]

_BCE_FUNCTIONS = (
    (F, "binary_cross_entropy_with_logits"),
    (F, "binary_cross_entropy"),
    (torch, "binary_cross_entropy_with_logits"),
)


# --------------------------------------------------------------------- chapter 1
def check_mean_squared_error(fn: Callable[..., Tensor]) -> CheckResult:
    r"""``fn(input, target, *, reduction="mean")`` is the mean squared error, without
    ``F.mse_loss``.

    Checked for the reductions ``"mean"``, ``"sum"`` and ``"none"`` on inputs of several
    shapes: the values, and the gradients with respect to both ``input`` and ``target``.
    Calling ``F.mse_loss`` (or ``nn.MSELoss``) fails the check.
    """

    def trials() -> None:
        g = gen(1)
        for shape in ((7,), (4, 3), (2, 3, 5)):
            a = torch.randn(shape, generator=g, requires_grad=True)
            b = torch.randn(shape, generator=g, requires_grad=True)
            diff = (a - b).detach()
            for reduction in ("mean", "sum", "none"):
                scale = 1.0 / diff.numel() if reduction == "mean" else 1.0
                want = {"mean": (diff**2).mean(), "sum": (diff**2).sum(), "none": diff**2}
                with forbid((F, "mse_loss"), (torch, "mse_loss")):
                    got = fn(a, b, reduction=reduction)
                where = f"reduction={reduction!r} on inputs of shape {shape}"
                hint = where
                if reduction == "mean":
                    hint += " (what does 'mean' divide by?)"
                expect_close(got, want[reduction], hint)
                expect_grads(
                    got,
                    [a, b],
                    [2 * scale * diff, -2 * scale * diff],
                    f"your loss with {where}",
                )

    return run_check(
        "mean_squared_error", fn, trials, "values and gradients right for every reduction"
    )


def check_bce_with_logits(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(logits, target)`` is the mean binary cross-entropy on logits, without PyTorch's
    binary cross-entropy functions.

    Checked on moderate logits and at logits of +-20, +-200 and +-1e4: the value is finite
    and right, and so is the gradient with respect to the logits.
    """

    def trials() -> None:
        g = gen(2)
        moderate = 3 * torch.randn(50, generator=g)
        cases = [
            ("moderate logits", moderate, (torch.rand(50, generator=g) < 0.4).float()),
            (
                "logits of +-20, +-200 and +-1e4",
                torch.tensor([-20.0, 20.0, -200.0, 200.0, -1e4, 1e4, -1e4, 1e4]),
                torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]),
            ),
        ]
        for where, logits, target in cases:
            want = F.binary_cross_entropy_with_logits(logits, target)
            logits = logits.clone().requires_grad_(True)
            with forbid(*_BCE_FUNCTIONS):
                got = fn(logits, target)
            expect_close(got, want, f"on {where}", rtol=1e-4)
            want_grad = (torch.sigmoid(logits.detach()) - target) / len(target)
            expect_grads(got, [logits], [want_grad], f"your loss on {where}")

    return run_check(
        "bce_with_logits", fn, trials, "value and gradient right and finite up to logits of 1e4"
    )


# --------------------------------------------------------------------- chapter 2
def check_weighted_epoch_mean(fn: Callable[[list[float], list[int]], float]) -> CheckResult:
    r"""``fn(batch_means, batch_sizes)`` is the mean over samples, not over batches."""

    def trials() -> None:
        cases = [
            ([1.0, 2.0, 4.0], [64, 64, 8]),
            ([0.5, 3.0], [32, 16]),
            ([3.0], [5]),
            ([2.0, 2.0, 2.0, 10.0], [10, 10, 10, 1]),
        ]
        for means, sizes in cases:
            got = fn(list(means), list(sizes))
            want = sum(m * n for m, n in zip(means, sizes)) / sum(sizes)
            expect(
                isinstance(got, (float, int, Tensor)),
                f"return a number, got {describe(got)}",
            )
            expect(
                math.isclose(float(got), want, rel_tol=1e-6),
                f"for batch means {means} with sizes {sizes} you returned {float(got):.4f}; "
                "a mean over samples counts every sample once",
            )

    return run_check("weighted_epoch_mean", fn, trials, "every sample counts once")


def check_per_sample_losses(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(logits, target)`` returns one cross-entropy per sample, shape ``(N,)``.

    Checked on moderate logits and on logits of +-1e4: values and gradients finite and right.
    """

    def trials() -> None:
        g = gen(3)
        moderate = torch.randn(12, 4, generator=g)
        extreme = 1e4 * torch.sign(torch.randn(6, 4, generator=g))
        for where, logits, target in (
            ("moderate logits", moderate, torch.randint(4, (12,), generator=g)),
            ("logits of +-1e4", extreme, torch.randint(4, (6,), generator=g)),
        ):
            logits = logits.clone().requires_grad_(True)
            want = F.cross_entropy(logits.detach(), target, reduction="none")
            got = fn(logits, target)
            expect(
                isinstance(got, Tensor) and got.shape == want.shape,
                f"expected one loss per sample, shape {tuple(want.shape)}; got {describe(got)}",
            )
            expect_close(got, want, f"on {where}, the per-sample cross-entropy", rtol=1e-4)
            onehot = F.one_hot(target, logits.shape[1]).float()
            want_grad = torch.softmax(logits.detach(), 1) - onehot
            expect_grads(got, [logits], [want_grad], f"your losses on {where}")

    return run_check(
        "per_sample_losses", fn, trials, "one cross-entropy per sample, finite gradients"
    )
