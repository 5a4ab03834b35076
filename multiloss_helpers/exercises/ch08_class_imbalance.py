r"""Checks for the exercises of chapter 8, *Class imbalance: weights, resampling and honest
metrics*."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ._harness import CheckResult, describe, expect, forbid, gen, public, run_check, verdict

__all__ = [
    "check_balanced_accuracy",
    "check_balanced_weights",
    "check_rare_class_absence",
]


def check_balanced_weights(fn: Callable[[Tensor, int], Tensor]) -> CheckResult:
    r"""``fn(target, num_classes)`` returns scikit-learn's balanced weights ``n / (C n_c)``,
    a float tensor of length ``C = num_classes``.

    A class absent from ``target`` still gets an entry (``n / 0``: ``inf``, or ``0``; both are
    accepted), so the result has length ``C`` even when the last classes are absent.
    """

    def trials() -> None:
        cases = [
            ("90/9/1 counts", torch.tensor([0] * 90 + [1] * 9 + [2]), 3),
            ("class 2 absent", torch.tensor([0] * 6 + [1] * 2), 3),
            ("class 1 absent", torch.tensor([0] * 5 + [2] * 3), 3),
            ("classes 3 and 4 absent", torch.tensor([0, 1, 1, 2, 2, 2]), 5),
        ]
        for where, target, num_classes in cases:
            counts = torch.bincount(target, minlength=num_classes).double()
            want = target.numel() / (num_classes * counts)
            with forbid(public("class_weights")):
                got = fn(target.clone(), num_classes)
            expect(
                isinstance(got, Tensor) and got.shape == (num_classes,),
                f"with {where} and num_classes={num_classes} expected {num_classes} weights, "
                f"got {describe(got)}: every class needs an entry, even one with no sample",
            )
            expect(got.is_floating_point(), f"the weights should be floats, got {got.dtype}")
            present = counts > 0
            expect(
                _close_present(got, want, present),
                f"with {where} you returned {[round(v, 3) for v in got.tolist()]}: for every "
                "class present, weight times count should be the same, n / C",
            )
            absent = got.detach().double()[~present]
            expect(
                bool(((absent == 0) | torch.isposinf(absent)).all()),
                f"with {where} an absent class gets {absent.tolist()}; n / (C * 0) is inf "
                "(0 is accepted too)",
            )

    return run_check("balanced_weights", fn, trials, "n / (C n_c), one entry per class")


def _close_present(got: Tensor, want: Tensor, present: Tensor) -> bool:
    """Whether ``got`` matches ``want`` on the classes that have samples."""
    return bool(torch.allclose(got.detach().double()[present], want[present], rtol=1e-4))


def _balanced_accuracy(pred: Tensor, target: Tensor) -> float:
    recalls = [(pred[target == c] == c).double().mean() for c in torch.unique(target)]
    return float(torch.stack(recalls).mean())


def check_balanced_accuracy(fn: Callable[[Tensor, Tensor], float]) -> CheckResult:
    r"""``fn(pred, target)`` is the mean, over the classes present in ``target``, of each
    class's recall (a float or a 0-d tensor).

    Checked with a majority-class predictor, random three-class labels, and predictions of a
    class that ``target`` does not contain (it counts as a wrong prediction, not as a class).
    """

    def trials() -> None:
        g = gen(9)
        cases = [
            ("always predicting the majority class", torch.zeros(100, dtype=torch.long),
             torch.tensor([0] * 95 + [1] * 5)),
            ("a random 3-class case", torch.randint(3, (60,), generator=g),
             torch.randint(3, (60,), generator=g)),
            ("predictions of class 3, absent from the target", torch.tensor([0, 3, 3, 1, 2, 2]),
             torch.tensor([0, 0, 1, 1, 2, 2])),
            ("classes 0 and 2 only in the target", torch.tensor([0, 2, 1, 2, 2]),
             torch.tensor([0, 0, 2, 2, 2])),
        ]  # fmt: skip
        for where, pred, target in cases:
            want = _balanced_accuracy(pred, target)
            with forbid(public("balanced_accuracy"), public("per_class_recall")):
                got = fn(pred.clone(), target.clone())
            expect(
                isinstance(got, (float, int, Tensor)) and not isinstance(got, bool),
                f"return a number, got {describe(got)}",
            )
            expect(
                math.isclose(float(got), want, abs_tol=1e-6),
                f"for {where} you returned {float(got):.4f}: average the recalls of the "
                "classes present in the target",
            )

    return run_check("balanced_accuracy", fn, trials, "the mean of the per-class recalls")


# investigation: the learner reports a measured finding; the check reruns the experiment
def _absence_probability(n: int, k: int, batch_size: int) -> float:
    r"""P(a batch of ``batch_size`` drawn without replacement from ``n`` samples, ``k`` of
    them rare, holds no rare sample): :math:`\prod_{i<B} (n - k - i) / (n - i)`."""
    if batch_size > n - k:
        return 0.0
    return math.exp(sum(math.log((n - k - i) / (n - i)) for i in range(batch_size)))


def check_rare_class_absence(
    shares: Any, target: Tensor, *, rare_class: int, tolerance: float = 0.05
) -> CheckResult:
    r"""Investigation: ``shares`` maps each batch size you tried (at least three, among
    them 32, 128 and 512) to the share of full shuffled mini-batches of ``target`` that
    held no sample of ``rare_class``, measured over several epochs.

    The check compares each share with the exact probability for batches drawn without
    replacement, within ``tolerance`` (absolute), and checks that the share falls as the
    batch grows.
    """

    def trials() -> None:
        expect(
            isinstance(shares, Mapping) and len(shares) >= 3,
            f"report a dict {{batch_size: share}} with at least three batch sizes, "
            f"got {describe(shares)}",
        )
        missing = {32, 128, 512} - set(shares)
        expect(not missing, f"batch sizes {sorted(missing)} are missing from your dict")
        n = int(target.numel())
        k = int((target == rare_class).sum())
        for batch_size in sorted(shares):
            share = shares[batch_size]
            expect(
                isinstance(share, (int, float)) and 0 <= float(share) <= 1,
                f"the share for batch size {batch_size} should be a number in [0, 1], "
                f"got {share!r}",
            )
            want = _absence_probability(n, k, int(batch_size))
            expect(
                abs(float(share) - want) <= tolerance,
                f"for batch size {batch_size} your share {float(share):.3f} is off by more "
                f"than {tolerance}: count the batches that hold NO sample of class "
                f"{rare_class}, over several epochs, and divide by the number of batches",
            )
        ordered = [float(shares[b]) for b in sorted(shares)]
        expect(
            all(a >= b - tolerance for a, b in itertools.pairwise(ordered)),
            "your shares should fall (or stay level) as the batch grows",
        )

    return verdict(
        "rare_class_absence",
        trials,
        "the shares match the chance that a batch draws no rare sample",
    )
