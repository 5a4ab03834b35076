r"""Checks for the exercises of chapter 16, *Missing labels and several data sets*."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from ..masking import masked_mean
from ..mixing import TaskMixer
from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    public,
    run_check,
    verdict,
)

__all__ = [
    "check_hurdle_loss",
    "check_masked_mean",
    "check_task_shares",
]

_NAN_LEAKS = (
    "a NaN in a masked-out entry reaches your result: NaN * 0 is NaN, so select the "
    "entries (or replace the others) before the sum, not after"
)


def _masked_cases() -> list[tuple[Tensor, Tensor, str]]:
    """Values and masks: random, one True, a 2-D mask, and masked-out NaN and inf."""
    g = gen(16)
    values = torch.randn(12, generator=g)
    mask = torch.rand(12, generator=g) < 0.4
    mask[0], mask[1] = True, False
    poisoned = values.clone()
    poisoned[~mask] = torch.tensor([math.nan, math.inf, -math.inf]).repeat(12)[: int((~mask).sum())]
    grid = torch.randn(3, 5, generator=g)
    grid_mask = torch.rand(3, 5, generator=g) < 0.5
    grid_mask[0, 0] = True
    one = torch.zeros(12, dtype=torch.bool)
    one[5] = True
    return [
        (values, mask, "on a vector with some entries masked out"),
        (values, one, "with a single True entry"),
        (grid, grid_mask, "on a (3, 5) tensor and mask"),
        (poisoned, mask, "with NaN and inf in the masked-out entries"),
    ]


def check_masked_mean(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(values, mask)`` is the mean of ``values`` over the entries where the ``bool``
    ``mask`` (of the same shape) is ``True``, as a scalar.

    Checked on random values (a vector and a 2-D tensor), with NaN and inf in the entries
    the mask leaves out (value and gradient must stay finite, with gradient 0 there), and
    with an all-``False`` mask: the result must be 0, still connected to the graph, with a
    zero (not NaN) gradient. ``mlh.masked_mean`` is not allowed.
    """

    def trials() -> None:
        forbidden = (public("masked_mean"),)
        for values, mask, where in _masked_cases():
            want_in = values.clone().requires_grad_(True)
            want = masked_mean(want_in, mask)
            (want_grad,) = torch.autograd.grad(want, want_in)
            mine = values.clone().requires_grad_(True)
            with forbid(*forbidden):
                got = fn(mine, mask.clone())
            expect(isinstance(got, Tensor), f"{where}: expected a tensor, got {describe(got)}")
            wrong_count = torch.where(mask, values, 0.0).sum() / values.numel()
            expect(
                not close(got.detach().reshape(()), wrong_count) or close(want, wrong_count),
                f"{where}: your value divides by every entry, labelled or not: the mean is "
                "over the entries the mask selects",
            )
            expect(bool(torch.isfinite(got.detach()).all()), f"{where}: {_NAN_LEAKS}")
            expect_close(got, want.detach(), where, rtol=1e-5, atol=1e-6)
            expect_grads(got, [mine], [want_grad], f"your mean {where}")
        empty = torch.randn(6, generator=gen(17)).requires_grad_(True)
        with forbid(*forbidden):
            got = fn(empty, torch.zeros(6, dtype=torch.bool))
        where = "with an all-False mask (a batch with no label)"
        expect(isinstance(got, Tensor), f"{where}: expected a tensor, got {describe(got)}")
        expect(
            bool(torch.isfinite(got.detach()).all()),
            f"{where}: your value is not finite: 0 / 0 when nothing is selected; the mean "
            "of nothing should be 0",
        )
        expect_close(got, torch.tensor(0.0), where)
        expect_grads(got, [empty], [torch.zeros(6)], f"your mean {where}")

    return run_check(
        "masked_mean",
        fn,
        trials,
        "the mean over the selected entries; 0 with a graph when none; NaN never leaks",
    )


def _hurdle_reference(logit: Tensor, amount: Tensor, y: Tensor) -> Tensor:
    positive = y > 0
    bce = F.binary_cross_entropy_with_logits(logit, positive.to(logit.dtype))
    return bce + masked_mean((amount - torch.where(positive, y, 0.0)) ** 2, positive)


def _hurdle_cases() -> list[tuple[Tensor, Tensor, Tensor, str]]:
    g = gen(18)
    logit, amount = 2 * torch.randn(20, generator=g), torch.randn(20, generator=g) + 1
    y = torch.where(torch.rand(20, generator=g) < 0.4, torch.rand(20, generator=g) + 0.5, 0.0)
    y[0], y[1] = 0.0, 1.5
    return [
        (logit, amount, y, "on a batch with some zeros"),
        (logit[:6], amount[:6], torch.zeros(6), "on a batch with no positive target"),
        (logit[:6], amount[:6], torch.rand(6, generator=g) + 0.5, "with every target positive"),
        (20 * logit, amount, y, "with confident logits (up to about +-60)"),
    ]


def check_hurdle_loss(fn: Callable[[Tensor, Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(any_logit, amount, y)`` is the hurdle loss for a target ``y >= 0``: the mean
    binary cross-entropy of the logits ``any_logit`` against ``y > 0`` over every sample,
    plus the mean squared error of ``amount`` against ``y`` over the samples with ``y > 0``
    only (0, with a graph, when there are none).

    Checked for values and gradients (with respect to both heads' outputs) on a batch with
    zeros, one with no positive target, one with only positive targets, and confident
    logits. ``mlh.masked_mean`` is allowed.
    """

    def trials() -> None:
        for logit, amount, y, where in _hurdle_cases():
            ref = [logit.clone().requires_grad_(True), amount.clone().requires_grad_(True)]
            want = _hurdle_reference(ref[0], ref[1], y)
            want_grads = torch.autograd.grad(want, ref)
            mine = [logit.clone().requires_grad_(True), amount.clone().requires_grad_(True)]
            got = fn(mine[0], mine[1], y.clone())
            expect(isinstance(got, Tensor), f"{where}: expected a tensor, got {describe(got)}")
            positive = y > 0
            bce = F.binary_cross_entropy_with_logits(logit, positive.float())
            mistakes = (
                (bce + F.mse_loss(amount, y), "the amount's loss should only see the samples "
                 "where y > 0: a zero says nothing about how much"),
                (bce + torch.where(positive, (amount - y) ** 2, 0.0).mean(), "the amount's "
                 "loss divides by every sample, not by the number of positive ones"),
                (masked_mean((amount - y) ** 2, positive), "the classification part "
                 "(is y positive?) is missing"),
            )  # fmt: skip
            for value, hint in mistakes:
                mistaken = close(got.detach().reshape(()), value, rtol=1e-4)
                expect(not (mistaken and not close(value, want, rtol=1e-4)), f"{where}: {hint}")
            expect(
                bool(torch.isfinite(got.detach()).all()),
                f"{where}: your value is not finite (with no positive target, the amount's "
                "mean is over nothing and should be 0)",
            )
            expect_close(got, want.detach(), where, rtol=1e-4, atol=1e-5)
            expect_grads(got, mine, list(want_grads), f"your loss {where}", rtol=1e-3)

    return run_check(
        "hurdle_loss",
        fn,
        trials,
        "BCE on 'any' over every sample plus the amount's MSE over the positives only",
    )


def _shares(sizes: Mapping[str, int], temperature: float, steps: int, seed: int) -> dict:
    loaders = {name: range(size) for name, size in sizes.items()}
    mixer = TaskMixer(
        loaders, strategy="temperature", temperature=temperature, seed=seed,
        steps_per_epoch=steps,
    )  # fmt: skip
    names = [name for name, _ in mixer]
    return {name: names.count(name) / steps for name in sizes}


def check_task_shares(
    shares: object, sizes: Mapping[str, int], *, steps: int, seed: int
) -> CheckResult:
    r"""Investigation: ``shares`` maps each temperature ``T`` you tried (at least 1, 2, 5
    and 100) to ``{task: share}``, the share of the ``steps`` steps in which a
    ``mlh.TaskMixer`` over loaders of the given ``sizes`` (number of batches per task), with
    ``strategy="temperature"``, ``temperature=T``, ``seed`` and ``steps_per_epoch=steps``,
    yielded each task.

    The check reruns the same mixer for every ``T`` and compares your shares exactly
    (within 1e-9), then checks that the smallest task's share grows with ``T``.
    """

    def trials() -> None:
        expect(
            isinstance(shares, dict) and {1, 2, 5, 100} <= set(shares),
            "report a dict {T: {task: share}} for at least T = 1, 2, 5 and 100, got "
            f"{describe(shares)}"
            + (f" with keys {sorted(shares)}" if isinstance(shares, dict) else ""),
        )
        found = cast("dict[Any, Any]", shares)
        smallest = min(sizes, key=lambda name: sizes[name])
        for t in sorted(found):
            got = found[t]
            expect(
                isinstance(got, dict) and set(got) == set(sizes),
                f"for T={t}, give one share per task {sorted(sizes)}, got {describe(got)}",
            )
            expect(
                all(isinstance(v, (int, float)) for v in got.values())
                and abs(sum(got.values()) - 1) < 1e-6,
                f"for T={t} your shares should be numbers that sum to 1 (divide the counts "
                "by the number of steps)",
            )
            want = _shares(sizes, float(t), steps, seed)
            mixer = TaskMixer({n: range(s) for n, s in sizes.items()}, strategy="temperature",
                              temperature=float(t))  # fmt: skip
            probable = all(abs(got[n] - p) < 1e-9 for n, p in mixer.probabilities.items())
            expect(
                not probable,
                f"for T={t} your shares are the mixer's probabilities, not what it yielded: "
                "count the tasks over the steps",
            )
            expect(
                all(abs(got[n] - want[n]) < 1e-9 for n in sizes),
                f"for T={t} your shares do not match a rerun of the mixer: strategy "
                "'temperature' with this T, the given seed and steps_per_epoch=steps",
            )
        values = [found[t][smallest] for t in sorted(found)]
        expect(
            values[0] < values[-1],
            "the smallest task's share should grow from the lowest to the highest T",
        )

    return verdict(
        "task_shares", trials, "your shares match the mixer's, and the small task gains with T"
    )
