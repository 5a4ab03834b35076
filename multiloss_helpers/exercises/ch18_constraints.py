r"""Checks for the exercises of chapter 18, *Constraints instead of weights*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..constraints import Constraints
from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    forbid,
    gen,
    grads_of,
    public,
    run_check,
    verdict,
)

__all__ = [
    "check_ascent_step",
    "check_damping_finding",
    "check_proxy_recall",
]


# ---------------------------------------------------------------- ascent_step
def _ascent_cases() -> list[tuple[str, Tensor, Tensor, float]]:
    """(where, multipliers, violations, lr)."""
    g = gen(18)
    return [
        ("a violated constraint", torch.tensor([0.5]), torch.tensor([2.0]), 0.1),
        ("a satisfied constraint", torch.tensor([0.5]), torch.tensor([-2.0]), 0.1),
        ("a satisfied constraint, far below", torch.tensor([0.3]), torch.tensor([-4.0]), 0.5),
        ("an inactive constraint at zero", torch.tensor([0.0]), torch.tensor([-1.0]), 1.0),
        (
            "mixed constraints",
            torch.tensor([1.0, 0.0, 2.0, 0.2]),
            torch.tensor([0.5, -0.5, -1.0, -3.0]),
            0.25,
        ),
        ("random constraints", torch.rand(6, generator=g), torch.randn(6, generator=g), 0.7),
    ]


def _ascent_hint(got: Tensor, lam: Tensor, g: Tensor, lr: float) -> str:
    """What a wrong step did, from the typical mistakes; ``""`` when none matches."""
    if bool((got < 0).any()):
        return "a multiplier went below zero: multipliers of inequality constraints stay >= 0"
    if close(got, (lam - lr * g).clamp(min=0)):
        return (
            "your step moves the multipliers against the violation: a violated "
            "constraint (positive violation) must raise its multiplier"
        )
    if close(got, lam + lr * g.clamp(min=0)):
        return "a satisfied constraint (negative violation) never lowers its multiplier"
    return "your multipliers are wrong"


def check_ascent_step(fn: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(multipliers, violations, lr)``: the projected ascent step
    :math:`\max(0, \lambda + \eta g)` of inequality multipliers, without ``mlh.Constraints``.

    Checked on violated, satisfied and inactive constraints and on random ones; the result
    must carry no graph when ``violations`` has one, and ``multipliers`` must not change.
    """

    def trials() -> None:
        for where, lam, g, lr in _ascent_cases():
            violations = g.clone().requires_grad_()
            multipliers = lam.clone()
            with forbid(public("Constraints")):
                got = fn(multipliers, violations * 1.0, lr)
            hint = f"for {where}"
            expect(
                isinstance(got, Tensor) and got.shape == lam.shape,
                f"{hint}: return a tensor of the multipliers' shape {tuple(lam.shape)}, "
                f"got {describe(got)}",
            )
            expect(
                torch.equal(multipliers, lam),
                f"{hint}: you changed `multipliers` in place; return new multipliers",
            )
            expect(
                not got.requires_grad,
                f"{hint}: your multipliers carry the graph of the violations: the next "
                "step's backward would run into this step's graph",
            )
            want = (lam + lr * g).clamp(min=0)
            expect(close(got, want), f"{hint}: {_ascent_hint(got.detach(), lam, g, lr)}")

    return run_check(
        "ascent_step", fn, trials, "the projected ascent step, sign, clamp and graph right"
    )


# ---------------------------------------------------------------- proxy_recall
def _recall_cases() -> list[tuple[str, Tensor, Tensor]]:
    """(where, logits, 0/1 targets): few positives, as in an imbalanced problem."""
    g = gen(181)
    cases = []
    for n, positives in ((40, 4), (60, 3), (25, 10)):
        target = torch.zeros(n, dtype=torch.long)
        target[torch.randperm(n, generator=g)[:positives]] = 1
        logits = 2 * torch.randn(n, generator=g) + target
        cases.append((f"{n} samples with {positives} positives", logits, target))
    all_found = torch.tensor([3.0, -1.0, 2.0, -2.0, 0.5])
    cases.append(
        ("a batch where every positive is found", all_found, torch.tensor([1, 0, 1, 0, 1]))
    )
    return cases


def _soft_recall(logits: Tensor, target: Tensor) -> Tensor:
    return torch.sigmoid(logits)[target == 1].mean()


def _hard_recall(logits: Tensor, target: Tensor) -> Tensor:
    positive = target == 1
    return ((logits > 0) & positive).sum() / positive.sum()


def _recall_value_hint(value: Tensor, logits: Tensor, target: Tensor) -> str:
    if close(value, _soft_recall(logits, target).detach()):
        return (
            "your value is the soft recall: the value must count the positives whose "
            "logit is above 0"
        )
    found = ((logits > 0) & (target == 1)).sum()
    if close(value, (found / len(target)).float()):
        return "your value divides by the number of samples: recall divides by the positives"
    return "your value is not the recall of the predictions with a logit above 0"


def check_proxy_recall(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(logits, target)``: a scalar whose value is the recall of ``logits > 0`` on the
    positives of ``target`` and whose gradient is that of the mean of ``sigmoid(logits)``
    over the positives.

    Checked on batches with few positives and one where every positive is found.
    """

    def trials() -> None:
        for where, logits, target in _recall_cases():
            leaf = logits.clone().requires_grad_()
            got = fn(leaf, target.clone())
            hint = f"for {where}"
            expect(
                isinstance(got, Tensor) and got.numel() == 1,
                f"{hint}: return one number as a tensor, got {describe(got)}",
            )
            value = got.detach().reshape(()).float()
            want = _hard_recall(logits, target).float()
            expect(close(value, want), f"{hint}: {_recall_value_hint(value, logits, target)}")
            grads = grads_of(got, [leaf], f"{hint}: your recall")
            soft = logits.clone().requires_grad_()
            (ref,) = torch.autograd.grad(_soft_recall(soft, target), [soft])
            expect(
                close(grads[0], ref, rtol=1e-4, atol=1e-6),
                f"{hint}: the gradient of your recall is not that of the soft recall, the "
                "mean of the sigmoid over the positives",
            )

    return run_check(
        "proxy_recall", fn, trials, "the recall's value with the soft recall's gradient"
    )


# investigation: the learner reports a measured finding; the check reruns the experiment
DAMPINGS = (0.0, 0.5, 1.0, 2.0, 5.0)


def _final_violation(damping: float) -> float:
    """The exercise's experiment: |theta_1 + theta_2 - 2| after 300 steps."""
    theta = torch.zeros(2, requires_grad=True)
    constraints = Constraints([2.0], lr=2.0, damping=damping)
    optimizer = torch.optim.SGD([theta], lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        objective = ((theta - 2.0) ** 2).sum()
        constraints.backward(torch.stack([objective, theta.sum()]))
        optimizer.step()
    return abs(float(theta.detach().sum()) - 2.0)


def check_damping_finding(finding: object, *, atol: float = 1e-5) -> CheckResult:
    r"""Investigation: ``finding`` maps each damping :math:`c` (at least 0, 0.5, 1, 2 and 5)
    to :math:`|\theta_1 + \theta_2 - 2|` after 300 steps of the exercise's experiment.

    The check reruns the experiment for each :math:`c` and compares (within ``atol``, or
    a relative 1e-4).
    """

    def trials() -> None:
        expect(
            isinstance(finding, dict) and set(DAMPINGS) <= set(finding),
            "report a dict {damping: violation} for at least damping = 0, 0.5, 1, 2 and 5, "
            f"got {describe(finding)}"
            + (f" with keys {sorted(finding)}" if isinstance(finding, dict) else ""),
        )
        table: dict[Any, Any] = finding if isinstance(finding, dict) else {}
        for c in DAMPINGS:
            got = table[c]
            expect(
                isinstance(got, (int, float)) and not isinstance(got, bool),
                f"the violation for damping {c} should be a number, got {got!r}",
            )
            expect(
                got >= 0,
                f"the violation for damping {c} is negative: report its size, "
                "|theta_1 + theta_2 - 2|",
            )
            want = _final_violation(c)
            expect(
                abs(float(got) - want) <= max(atol, 1e-4 * want),
                f"for damping {c} your violation {float(got):.4g} is not what the "
                "experiment gives: start at (0, 0), SGD step 0.05, ascent step 2, 300 "
                "steps, the violation after the last one",
            )

    return verdict(
        "damping_finding", trials, "the violation after 300 steps, for every damping, as measured"
    )
