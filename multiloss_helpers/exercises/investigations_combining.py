r"""Investigation exercises for the part "Combining losses" (chapters 3-7).

An investigation asks the learner to run a small experiment and report a finding, a
number; its check reruns the experiment itself and accepts the number within a
tolerance. Like every exercise check it prints a one-line verdict, returns a
:class:`~multiloss_helpers.exercises.CheckResult`, and says *what* is off, never the
answer.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import Tensor, nn

from ._harness import CheckResult

__all__ = ["check_unbounded_slowdown"]

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


def _report(name: str, passed: bool, message: str) -> CheckResult:
    print(f"{'✓' if passed else '✗'} {name}: {message}")
    return CheckResult(name, passed, message)


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
    if isinstance(answer, Tensor) and answer.numel() == 1:
        answer = answer.item()
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        return _report(name, False, f"report the ratio as a number, got a {type(answer).__name__}")
    if not math.isfinite(answer) or answer <= 0:
        return _report(name, False, f"a ratio of two growths is a positive number, got {answer}")
    fast, slow = _loss2_growths()
    want = fast / slow
    if math.isclose(answer, want, rel_tol=rtol):
        return _report(name, True, f"{answer:.2f}: the term still grows, only more slowly")
    if answer < 1:
        hint = "your ratio says alpha = 0.001 grows faster: is it upside down?"
    else:
        hint = (
            f"{answer:.2f} is not what the experiment gives: measure the growth from the "
            f"middle step ({SLOWDOWN_STEPS // 2}) to the last, for the seeds "
            f"{list(SLOWDOWN_SEEDS)}, averaged over the seeds, at both alphas"
        )
    return _report(name, False, hint)
