"""Chapter 18's checks: right answers pass, typical wrong ones fail with their hint, a stub
stops."""

from __future__ import annotations

import functools

import torch

import multiloss_helpers as mlh

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("clamp(", "max(0,", ".detach()", "soft + (hard")


# ---------------------------------------------------------------- ascent_step
def _ascent(multipliers, violations, lr):
    return (multipliers + lr * violations.detach()).clamp(min=0)


def _ascent_wrong_sign(multipliers, violations, lr):
    return (multipliers - lr * violations.detach()).clamp(min=0)


def _ascent_no_clamp(multipliers, violations, lr):
    return multipliers + lr * violations.detach()


def _ascent_with_graph(multipliers, violations, lr):
    return (multipliers + lr * violations).clamp(min=0)


def _ascent_clamps_violations(multipliers, violations, lr):
    return multipliers + lr * violations.detach().clamp(min=0)


def _ascent_in_place(multipliers, violations, lr):
    multipliers += lr * violations.detach()
    return multipliers.clamp_(min=0)


def _ascent_no_lr(multipliers, violations, lr):
    return (multipliers + violations.detach()).clamp(min=0)


def _ascent_library(multipliers, violations, lr):
    constraints = mlh.Constraints(torch.zeros(len(multipliers)), lr=lr)
    return _ascent(multipliers, violations, lr) + 0 * constraints.multipliers


# ---------------------------------------------------------------- proxy_recall
def _proxy(logits, target):
    positive = target == 1
    hard = ((logits > 0) & positive).sum() / positive.sum()
    soft = torch.sigmoid(logits)[positive].mean()
    return soft + (hard - soft).detach()


def _soft_only(logits, target):
    return torch.sigmoid(logits)[target == 1].mean()


def _hard_only(logits, target):
    positive = target == 1
    return ((logits > 0) & positive).sum() / positive.sum()


def _over_all_samples(logits, target):
    positive = target == 1
    hard = ((logits > 0) & positive).sum() / len(target)
    soft = torch.sigmoid(logits)[positive].mean()
    return soft + (hard - soft).detach()


def _threshold_half(logits, target):
    positive = target == 1
    hard = ((logits > 0.5) & positive).sum() / positive.sum()
    soft = torch.sigmoid(logits)[positive].mean()
    return soft + (hard - soft).detach()


def _soft_over_all(logits, target):
    positive = target == 1
    hard = ((logits > 0) & positive).sum() / positive.sum()
    soft = torch.sigmoid(logits).mean()
    return soft + (hard - soft).detach()


def _per_sample(logits, target):
    positive = (target == 1).float()
    return _proxy(logits, target) * positive / positive.mean()


# ------------------------------------------------ investigation: damping_finding
DAMPINGS = (0.0, 0.5, 1.0, 2.0, 5.0)


def _violation(damping, *, steps=300, start=0.0, eta=2.0, signed=False):
    theta = torch.full((2,), start, requires_grad=True)
    constraints = mlh.Constraints([2.0], lr=eta, damping=damping)
    optimizer = torch.optim.SGD([theta], lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        objective = ((theta - 2.0) ** 2).sum()
        constraints.backward(torch.stack([objective, theta.sum()]))
        optimizer.step()
    value = theta.sum().item() - 2.0
    return value if signed else abs(value)


@functools.cache
def _measured():
    return {c: _violation(c) for c in DAMPINGS}


def _report(change):
    """The check, run on the measured table changed by ``change``."""

    def call(check):
        return check(change(dict(_measured())))

    return call


CASES = [
    right("check_ascent_step", _ascent),
    wrong("check_ascent_step", _ascent_wrong_sign, "against the violation"),
    wrong("check_ascent_step", _ascent_no_clamp, "went below zero"),
    wrong("check_ascent_step", _ascent_with_graph, "carry the graph of the violations"),
    wrong("check_ascent_step", _ascent_clamps_violations, "never lowers its multiplier"),
    wrong("check_ascent_step", _ascent_in_place, "changed `multipliers` in place"),
    wrong("check_ascent_step", _ascent_no_lr, "your multipliers are wrong"),
    wrong("check_ascent_step", _ascent_library, "mlh.Constraints"),
    wrong(
        "check_ascent_step",
        lambda m, g, lr: _ascent(m, g, lr).tolist(),
        "return a tensor of the multipliers' shape",
    ),
    stub("check_ascent_step"),
    right("check_proxy_recall", _proxy),
    wrong("check_proxy_recall", _soft_only, "your value is the soft recall"),
    wrong("check_proxy_recall", _hard_only, "has no graph"),
    wrong("check_proxy_recall", _over_all_samples, "divides by the number of samples"),
    wrong("check_proxy_recall", _threshold_half, "not the recall of the predictions"),
    wrong("check_proxy_recall", _soft_over_all, "not that of the soft recall"),
    wrong("check_proxy_recall", _per_sample, "return one number"),
    stub("check_proxy_recall"),
    finding("check_damping_finding", _report(lambda table: table), label="measured"),
    finding(
        "check_damping_finding",
        _report(lambda t: {c: _violation(c, signed=True) for c in DAMPINGS}),
        "report its size",
        label="signed",
    ),
    finding(
        "check_damping_finding",
        _report(lambda t: {c: _violation(c, steps=299) for c in DAMPINGS}),
        "is not what the experiment gives",
        label="one step short",
    ),
    finding(
        "check_damping_finding",
        _report(lambda t: {c: _violation(c, eta=0.5) for c in DAMPINGS}),
        "is not what the experiment gives",
        label="other ascent step",
    ),
    finding(
        "check_damping_finding",
        _report(lambda t: {c: _violation(0.0) for c in DAMPINGS}),
        "is not what the experiment gives",
        label="damping ignored",
    ),
    finding(
        "check_damping_finding",
        _report(lambda t: {c: t[c] for c in DAMPINGS[:3]}),
        "at least damping = 0, 0.5, 1, 2 and 5",
        label="missing damping",
    ),
    finding(
        "check_damping_finding",
        _report(lambda t: {c: torch.tensor(v) for c, v in t.items()}),
        "should be a number",
        label="tensors",
    ),
    finding(
        "check_damping_finding",
        lambda check: check(stub_answer),
        "report a dict {damping: violation}",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_the_right_answers_agree_with_the_library():
    constraints = mlh.Constraints([1.0, 0.0, -1.0], lr=0.3)
    losses = torch.tensor([0.0, 2.5, -1.0, -0.5], requires_grad=True)
    before = constraints.multipliers.clone()
    constraints.backward(losses)
    torch.testing.assert_close(
        _ascent(before, losses.detach()[1:] - constraints.bounds, 0.3), constraints.multipliers
    )
