r"""Checks for the exercises of chapter 2, *Monitoring and evaluating losses*."""

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
    gen,
    reduction_hint,
    run_check,
)

__all__ = [
    "check_per_sample_losses",
    "check_weighted_epoch_mean",
]


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
            reduced = reduction_hint(got, want, want)  # the mean or sum of the losses
            expect(
                isinstance(got, Tensor) and got.shape == want.shape,
                f"expected one loss per sample, shape {tuple(want.shape)}; got {describe(got)}"
                + (f" ({reduced})" if reduced else ""),
            )
            expect_close(got, want, f"on {where}, the per-sample cross-entropy", rtol=1e-4)
            onehot = F.one_hot(target, logits.shape[1]).float()
            want_grad = torch.softmax(logits.detach(), 1) - onehot
            expect_grads(got, [logits], [want_grad], f"your losses on {where}")

    return run_check(
        "per_sample_losses", fn, trials, "one cross-entropy per sample, finite gradients"
    )
