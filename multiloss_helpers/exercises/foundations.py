r"""Checks for the exercises of the Foundations part (chapters 1 and 2)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    gen,
    run_check,
)

__all__ = [
    "check_bce_with_logits",
    "check_mean_squared_error",
    "check_per_sample_losses",
    "check_weighted_epoch_mean",
]


# --------------------------------------------------------------------- chapter 1
def check_mean_squared_error(fn: Callable[..., Tensor]) -> CheckResult:
    """``fn(input, target, reduction="mean")`` is the mean squared error, for all reductions."""

    def trials() -> None:
        g = gen(1)
        for shape in ((7,), (4, 3), (2, 3, 5)):
            a, b = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            for reduction in ("mean", "sum", "none"):
                got = fn(a, b, reduction=reduction)
                want = F.mse_loss(a, b, reduction=reduction)
                hint = f"for reduction={reduction!r} and inputs of shape {shape} you returned "
                hint += f"{describe(got)}, expected {describe(want)} with other values"
                if reduction == "mean":
                    hint += " (is 'mean' dividing by the number of elements?)"
                expect(close(got, want), hint)

    return run_check(
        "mean_squared_error", fn, trials, "matches F.mse_loss for every reduction and shape"
    )


def check_bce_with_logits(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(logits, target)`` is the mean binary cross-entropy on logits, stable at large logits."""

    def trials() -> None:
        g = gen(2)
        logits, target = (
            3 * torch.randn(50, generator=g),
            (torch.rand(50, generator=g) < 0.4).float(),
        )
        expect(
            close(fn(logits, target), F.binary_cross_entropy_with_logits(logits, target)),
            "on moderate logits your value differs from the binary cross-entropy",
        )
        big = torch.tensor([-200.0, 200.0, -1e4, 1e4])
        labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
        got = fn(big, labels)
        expect(
            isinstance(got, Tensor) and bool(torch.isfinite(got)),
            "at logits of +-200 and +-1e4 your loss is not finite: avoid computing "
            "sigmoid and then its log (look for a log-sum-exp or softplus form)",
        )
        expect(
            close(got, F.binary_cross_entropy_with_logits(big, labels), rtol=1e-4),
            "at very large logits your loss is finite but wrong (is the log of the "
            "probability saturating?)",
        )

    return run_check(
        "bce_with_logits", fn, trials, "matches BCE-with-logits, finite up to logits of 1e4"
    )


# --------------------------------------------------------------------- chapter 2
def check_weighted_epoch_mean(fn: Callable[[list[float], list[int]], float]) -> CheckResult:
    """``fn(batch_means, batch_sizes)`` is the mean over samples, not over batches."""

    def trials() -> None:
        got = fn([1.0, 2.0, 4.0], [64, 64, 8])
        want = (64 * 1.0 + 64 * 2.0 + 8 * 4.0) / 136
        expect(
            isinstance(got, (float, int, Tensor)) and math.isclose(float(got), want, rel_tol=1e-6),
            f"for batch means [1, 2, 4] with sizes [64, 64, 8] you returned {float(got):.4f}; "
            "a mean over samples weights each batch by its size",
        )
        expect(math.isclose(float(fn([3.0], [5])), 3.0), "one batch should give its own mean")

    return run_check("weighted_epoch_mean", fn, trials, "weights each batch by its size")


def check_per_sample_losses(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(logits, target)`` returns one cross-entropy per sample."""

    def trials() -> None:
        g = gen(3)
        logits, target = torch.randn(12, 4, generator=g), torch.randint(4, (12,), generator=g)
        got = fn(logits, target)
        want = F.cross_entropy(logits, target, reduction="none")
        expect(
            isinstance(got, Tensor) and got.shape == want.shape,
            f"expected one loss per sample, shape (12,); got {describe(got)}",
        )
        expect(
            close(got, want),
            "the shape is right but the values are not the per-sample cross-entropy",
        )

    return run_check("per_sample_losses", fn, trials, "one cross-entropy per sample")
