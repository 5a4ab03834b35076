r"""Checks for the exercises of chapter 7, *Maximising one loss while minimising another*."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    gen,
    grads_of,
    is_number,
    plain,
    run_check,
    verdict,
)

__all__ = [
    "check_connected_weight_sum",
    "check_gradient_reversal",
    "check_unbounded_slowdown",
]


def check_connected_weight_sum(fn: Callable[[nn.Module], Tensor]) -> CheckResult:
    r"""``fn(model)`` returns the sum of all parameters as a scalar connected to every one."""

    def trials() -> None:
        torch.manual_seed(7)
        model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        params = list(model.parameters())
        total = fn(model)
        expect(
            isinstance(total, Tensor) and total.numel() == 1,
            f"expected a scalar tensor, got {describe(total)}",
        )
        want = torch.stack([p.detach().sum() for p in params]).sum()
        expect_close(total.reshape(()), want, "the sum of all parameters")
        expect(
            total.requires_grad,
            "the value is right but the graph is cut (torch.tensor and .item() copy values)",
        )
        grads = grads_of(total, params, "your sum")
        expect(
            all(bool((g == 1).all()) for g in grads),
            "every parameter should receive a gradient of 1",
        )

    return run_check("connected_weight_sum", fn, trials, "the sum of the weights, with its graph")


def check_gradient_reversal(fn: Callable[[Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(x, scale)``: the identity forward, the gradient times ``-scale`` backward."""

    def trials() -> None:
        for scale in (1.0, 0.3, 0.0):
            x = torch.randn(4, 3, generator=gen(7), requires_grad=True)
            y = fn(x, scale)
            expect_close(y, x.detach(), "the forward pass should return the input unchanged")
            upstream = torch.randn(4, 3, generator=gen(8))
            expect(
                isinstance(y, Tensor) and y.requires_grad,
                "the output has no graph: no gradient can flow back to the input",
            )
            (grad,) = torch.autograd.grad(y, x, upstream, allow_unused=True)
            expect(grad is not None, "no gradient reaches the input: is it detached?")
            expect(
                close(grad, -scale * upstream),
                f"with scale={scale} the gradient should be -scale times the incoming one",
            )

    return run_check(
        "gradient_reversal", fn, trials, "identity forward, -scale x gradient backward"
    )


# investigation: the learner reports a measured finding; the check reruns the experiment

#: The experiment of the chapter-7 investigation: seeds, steps and the two alphas.
SLOWDOWN_SEEDS = (0, 1, 2, 3, 4)


SLOWDOWN_STEPS = 1000


SLOWDOWN_ALPHAS = (1.0, 0.001)


def _question_net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, 5), nn.ReLU(), nn.Linear(5, 10), nn.ReLU(), nn.Linear(10, 1))


def _stacked_forward(params: list[Tensor], x: Tensor) -> Tensor:
    for i in range(0, len(params), 2):
        x = torch.baddbmm(params[i + 1].unsqueeze(1), x, params[i].mT)
        x = torch.relu(x) if i + 2 < len(params) else x
    return x


@functools.lru_cache(maxsize=4)
def _loss2_growths(alphas: tuple[float, ...] = SLOWDOWN_ALPHAS) -> tuple[float, ...]:
    r"""For each of ``alphas``, the mean over ``SLOWDOWN_SEEDS`` of loss2 at
    the last step minus loss2 at the middle step, training the question's network on
    ``loss1 - alpha * loss2`` with Adam (lr 1e-3).

    One copy per (alpha, seed) is stacked and all are trained together; Adam updates each
    entry on its own, so every copy follows the run it would follow alone.
    """
    runs = [(a, s) for a in alphas for s in SLOWDOWN_SEEDS]
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        layers = zip(*(_question_net(seed).parameters() for _, seed in runs))
        params = [torch.stack(p).detach().requires_grad_() for p in layers]
    x = torch.stack([torch.rand(3, 1, generator=torch.Generator().manual_seed(s)) for _, s in runs])
    alpha = torch.tensor([a for a, _ in runs])
    optimizer = torch.optim.Adam(params, lr=1e-3)
    trace = []
    for _ in range(SLOWDOWN_STEPS):
        optimizer.zero_grad()
        loss1 = (5 - _stacked_forward(params, x).sum((1, 2))) ** 2
        loss2 = torch.stack([p.flatten(1).sum(1) for p in params]).sum(0)
        (loss1 - alpha * loss2).sum().backward()
        optimizer.step()
        trace.append(loss2.detach())
    growth = (trace[-1] - trace[SLOWDOWN_STEPS // 2]).view(len(alphas), -1)
    return tuple(growth.mean(1).tolist())  # cached: the experiment is deterministic


def check_unbounded_slowdown(answer: Any, *, rtol: float = 0.1) -> CheckResult:
    r"""The chapter-7 investigation: how many times slower does the "maximised" sum of the
    weights grow at ``alpha = 0.001`` than at ``alpha = 1``?

    ``answer`` is the learner's ratio: the growth of loss2 (the sum of all weights) from
    the middle step to the last of ``SLOWDOWN_STEPS`` Adam steps, averaged over
    ``SLOWDOWN_SEEDS``, at ``alpha = 1`` divided by the same at ``alpha = 0.001``. The
    check reruns the experiment and accepts a ratio within ``rtol`` (relative) of its own.

    Args:
        answer: the reported ratio, a real number.
        rtol: the relative tolerance. Default: ``0.1``.

    Returns:
        A :class:`~multiloss_helpers.exercises.CheckResult`, truthy when the ratio is right.

    Example:
        >>> bool(check_unbounded_slowdown(1e6))
        ✗ unbounded_slowdown: ...
        False
    """
    name = "unbounded_slowdown"
    value = plain(answer)

    def trials() -> None:
        expect(is_number(value), f"report the ratio as a number, got a {type(value).__name__}")
        expect(
            math.isfinite(value) and value > 0,
            f"a ratio of two growths is a positive number, got {value}",
        )
        fast, slow = _loss2_growths()
        expect(
            math.isclose(value, fast / slow, rel_tol=rtol) or value >= 1,
            "your ratio says alpha = 0.001 grows faster: is it upside down?",
        )
        expect(
            math.isclose(value, fast / slow, rel_tol=rtol),
            f"{value:.2f} is not what the experiment gives: measure the growth from the "
            f"middle step ({SLOWDOWN_STEPS // 2}) to the last, for the seeds "
            f"{list(SLOWDOWN_SEEDS)}, averaged over the seeds, at both alphas",
        )

    success = f"{value:.2f}: the term still grows, only more slowly" if is_number(value) else ""
    return verdict(name, trials, success)
