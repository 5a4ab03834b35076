r"""Checks for the exercises of the Imbalanced data part (chapters 8 and 9)."""

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
    package,
    run_check,
)

__all__ = [
    "check_balanced_accuracy",
    "check_balanced_weights",
    "check_binary_focal",
    "check_multiclass_focal",
]


# --------------------------------------------------------------------- chapter 8
def check_balanced_weights(fn: Callable[[Tensor, int], Tensor]) -> CheckResult:
    """``fn(target, num_classes)`` returns scikit-learn's balanced weights, n / (C n_c)."""

    def trials() -> None:
        target = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
        got = fn(target, 3)
        want = package().class_weights(target, 3)
        expect(
            isinstance(got, Tensor) and got.shape == (3,),
            f"expected 3 weights, got {describe(got)}",
        )
        expect(
            close(got.float(), want, rtol=1e-4),
            f"you returned {[round(v, 3) for v in got.tolist()]}: each "
            "class's weight times its count should be the same for every class, n / C",
        )

    return run_check("balanced_weights", fn, trials, "equals n / (C n_c)")


def check_balanced_accuracy(fn: Callable[[Tensor, Tensor], float]) -> CheckResult:
    """``fn(pred, target)`` is the mean of the per-class recalls."""

    def trials() -> None:
        target = torch.tensor([0] * 95 + [1] * 5)
        got = float(fn(torch.zeros(100, dtype=torch.long), target))
        expect(
            math.isclose(got, 0.5, abs_tol=1e-6),
            f"always predicting the majority class should score 0.5, you returned {got:.3f}",
        )
        g = gen(9)
        pred, target = torch.randint(3, (60,), generator=g), torch.randint(3, (60,), generator=g)
        expect(
            math.isclose(
                float(fn(pred, target)), package().balanced_accuracy(pred, target), rel_tol=1e-6
            ),
            "on a random 3-class case your value differs from the mean of the per-class recalls",
        )

    return run_check("balanced_accuracy", fn, trials, "the mean of the per-class recalls")


# --------------------------------------------------------------------- chapter 9
def check_binary_focal(fn: Callable[..., Tensor]) -> CheckResult:
    """``fn(logits, target, alpha, gamma)`` is the mean binary focal loss with alpha_t."""

    def trials() -> None:
        g = gen(10)
        logits, target = (
            2 * torch.randn(40, generator=g),
            (torch.rand(40, generator=g) < 0.3).float(),
        )
        expect(
            close(
                fn(logits, target, None, 0.0),
                F.binary_cross_entropy_with_logits(logits, target),
                rtol=1e-4,
            ),
            "with alpha=None and gamma=0 the loss should equal BCE with logits",
        )
        for alpha, gamma in ((None, 2.0), (0.25, 2.0), (0.75, 0.5)):
            want = package().binary_focal_loss(logits, target, alpha=alpha, gamma=gamma)
            got = fn(logits, target, alpha, gamma)
            hint = "check the modulating factor (1 - p_t)^gamma"
            if alpha is not None:
                hint += " and that alpha weights positives and 1 - alpha negatives"
            expect(close(got, want, rtol=1e-4), f"with alpha={alpha}, gamma={gamma}: {hint}")

    return run_check("binary_focal", fn, trials, "matches the focal loss with alpha_t")


def check_multiclass_focal(fn: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    """``fn(logits, target, gamma)`` is the mean multi-class focal loss."""

    def trials() -> None:
        g = gen(11)
        logits, target = 2 * torch.randn(30, 5, generator=g), torch.randint(5, (30,), generator=g)
        expect(
            close(fn(logits, target, 0.0), F.cross_entropy(logits, target), rtol=1e-4),
            "with gamma=0 the loss should equal cross-entropy",
        )
        for gamma in (0.5, 2.0):
            expect(
                close(
                    fn(logits, target, gamma),
                    package().focal_loss(logits, target, gamma=gamma),
                    rtol=1e-4,
                ),
                f"with gamma={gamma} the value is off: the factor uses the probability of "
                "the true class",
            )

    return run_check("multiclass_focal", fn, trials, "matches mlh.focal_loss")
