"""Chapter 7's checks: right answers pass, typical wrong ones fail with their hint, a stub stops."""

from __future__ import annotations

import functools
import math

import torch

from multiloss_helpers.exercises import ch07_maximizing as ch07

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.scale * g, None


def _partly_detached_sum(model):
    return torch.stack(
        [p.sum() if "weight" in n else p.detach().sum() for n, p in model.named_parameters()]
    ).sum()


@functools.cache
def _slowdown() -> float:
    fast, slow = ch07._loss2_growths()
    return fast / slow


def _ratio_at_alpha_0_01() -> float:
    fast, slow = ch07._loss2_growths((1.0, 0.01))
    return fast / slow


def _slowdown_times(factor: float):
    return lambda check: check(_slowdown() * factor)


NOT_IT = "is not what the experiment gives"

CASES = [
    right(
        "check_connected_weight_sum",
        lambda model: torch.stack([p.sum() for p in model.parameters()]).sum(),
    ),
    wrong(
        "check_connected_weight_sum",
        lambda model: torch.tensor([p.sum().item() for p in model.parameters()]).sum(),
        "graph is cut",
    ),
    wrong(
        "check_connected_weight_sum",
        lambda model: torch.stack([p.mean() for p in model.parameters()]).sum(),
        "value is wrong",
    ),
    wrong("check_connected_weight_sum", _partly_detached_sum, "does not reach"),
    stub("check_connected_weight_sum"),
    right("check_gradient_reversal", lambda x, scale: _Reverse.apply(x, scale)),
    wrong("check_gradient_reversal", lambda x, scale: -scale * x, "forward pass"),
    wrong("check_gradient_reversal", lambda x, scale: _Reverse.apply(x, 1.0), "-scale"),
    wrong("check_gradient_reversal", lambda x, scale: x.detach().clone(), "no graph"),
    wrong("check_gradient_reversal", lambda x, scale: x * 1.0, "-scale"),
    stub("check_gradient_reversal"),
    # the investigation: how many times slower the "maximised" term grows at alpha = 0.001
    finding("check_unbounded_slowdown", _slowdown_times(1.0), label="measured"),
    finding("check_unbounded_slowdown", _slowdown_times(0.95), label="measured x 0.95"),
    finding("check_unbounded_slowdown", _slowdown_times(1.05), label="measured x 1.05"),
    finding(
        "check_unbounded_slowdown",
        lambda check: check(torch.tensor(_slowdown())),
        label="a one-element tensor",
    ),
    finding(
        "check_unbounded_slowdown",
        lambda check: check(1 / _slowdown()),
        "upside down",
        label="upside down",
    ),
    finding("check_unbounded_slowdown", lambda c: c(1000.0), NOT_IT, label="proportional"),
    finding("check_unbounded_slowdown", lambda c: c(1.0), NOT_IT, label="no slowdown at all"),
    finding(
        "check_unbounded_slowdown",
        lambda check: check(_ratio_at_alpha_0_01()),
        NOT_IT,
        label="the chapter's alpha = 0.01",
    ),
    finding("check_unbounded_slowdown", lambda c: c(0.0), "positive", label="stops growing"),
    finding("check_unbounded_slowdown", _slowdown_times(1.33), NOT_IT, label="off by a third"),
    finding("check_unbounded_slowdown", lambda c: c("3.4"), "as a number", label="text"),
    finding("check_unbounded_slowdown", lambda c: c(math.nan), "positive number", label="nan"),
    finding("check_unbounded_slowdown", lambda c: c(True), "as a number", label="a bool"),
    finding("check_unbounded_slowdown", lambda c: c(-2.0), "positive", label="negative"),
    finding(
        "check_unbounded_slowdown",
        lambda check: check(stub_answer),
        "report the ratio as a number, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_reference_experiment_still_grows_at_the_small_alpha():
    fast, slow = ch07._loss2_growths()
    assert fast > slow > 0
    assert 1.5 < _slowdown() < 100  # slower, far from proportional to alpha (1000x)


def test_check_leaves_the_global_random_state_alone(capsys):
    ch07._loss2_growths.cache_clear()
    state = torch.random.get_rng_state()
    ch07.check_unbounded_slowdown(_slowdown())
    assert torch.equal(state, torch.random.get_rng_state())
    capsys.readouterr()
