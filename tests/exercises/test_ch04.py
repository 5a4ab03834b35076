"""Chapter 4's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The wrong answers include a weighted total without the ValueError that mismatched task
names call for, and investigation findings read the wrong way round.
"""

from __future__ import annotations

import functools

import torch

from multiloss_helpers.exercises import ch04_weighting_losses as ch04

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _weighted_total(losses, weights):
    if set(losses) != set(weights):
        raise ValueError(f"losses {sorted(losses)} and weights {sorted(weights)} differ")
    return torch.stack([weights[k] * v for k, v in losses.items()]).sum()


def _weighted_total_vague(losses, weights):
    if set(losses) != set(weights):
        raise ValueError("the names differ")
    return _weighted_total(losses, weights)


@functools.cache
def _adam_limit() -> int:
    return ch04._adam_scale_limit(seed=0)


def _scale(offset: int):
    return lambda check: check(_adam_limit() + offset, seed=0)


CASES = [
    right("check_normalised_weights", lambda init: {k: 1 / v for k, v in init.items()}),
    wrong("check_normalised_weights", lambda init: dict(init), "should be 1"),
    wrong(
        "check_normalised_weights",
        lambda init: {k: 1 / v for k, v in list(init.items())[:2]},
        "same task names",
    ),
    wrong(
        "check_normalised_weights",
        lambda init: {k: 1 / sum(init.values()) for k in init},
        "should be 1",
    ),
    stub("check_normalised_weights"),
    right("check_weighted_total", _weighted_total),
    wrong(
        "check_weighted_total",
        lambda losses, weights: _weighted_total(losses, weights) / len(losses),
        "the weighted sum: your value is the mean, not the sum, of the per-element values",
        label="mean-for-sum",
    ),
    wrong(
        "check_weighted_total",
        lambda losses, weights: sum(weights.get(k, 1.0) * v for k, v in losses.items()),
        "nothing is raised",
    ),
    wrong(
        "check_weighted_total",
        lambda losses, weights: sum(weights[k] * v for k, v in losses.items()),
        "ValueError",
    ),
    wrong("check_weighted_total", _weighted_total_vague, "does not name"),
    wrong("check_weighted_total", lambda losses, weights: sum(losses.values()), "value is wrong"),
    wrong(
        "check_weighted_total",
        lambda losses, weights: _weighted_total(
            {k: v.detach() for k, v in losses.items()}, weights
        ),
        "no graph",
    ),
    stub("check_weighted_total"),
    # the investigation: the smallest k for which scaling the loss by 10**-k changes Adam's run
    finding("check_adam_scale_limit", _scale(-1), label="measured-1"),
    finding("check_adam_scale_limit", _scale(0), label="measured"),
    finding("check_adam_scale_limit", _scale(1), label="measured+1"),
    # "every scale changes Adam's run", as with SGD
    finding("check_adam_scale_limit", lambda c: c(0, seed=0), "barely moves", label="0"),
    finding("check_adam_scale_limit", lambda c: c(1, seed=0), "barely moves", label="1"),
    # "Adam is invariant to every scale"
    finding("check_adam_scale_limit", lambda c: c(13, seed=0), "eps", label="13"),
    finding("check_adam_scale_limit", lambda c: c(2.5, seed=0), "whole number", label="2.5"),
    finding("check_adam_scale_limit", lambda c: c(-3, seed=0), "whole number", label="-3"),
    finding("check_adam_scale_limit", lambda c: c(True, seed=0), "one number", label="a bool"),
    finding("check_adam_scale_limit", _scale(3), "smaller k", label="three decades too far"),
    finding("check_adam_scale_limit", _scale(-2), "larger k", label="two decades too near"),
    finding(
        "check_adam_scale_limit",
        lambda check: check(stub_answer, seed=0),
        "`scale_limit` should be one number, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_adam_limit_is_where_eps_meets_the_gradients():
    assert 4 <= _adam_limit() <= 10
