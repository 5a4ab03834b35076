"""Property checks shared by every registered weighting strategy (applied by parametrize).

Every strategy in ``mlh.weighting.STRATEGIES`` is driven through the protocol only
(``backward`` each step, ``epoch_end`` every other step) on a small shared trunk
with one head per task, and checked for: weights of shape (T,) in the losses'
dtype, finite, non-negative and summing to T; finite gradients on every parameter;
the same run twice gives the same numbers; float32 and float64 losses both work;
permuting the tasks permutes the weights and leaves the trunk's gradient alone;
identical tasks get equal weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

import multiloss_helpers as mlh
from multiloss_helpers.weighting import STRATEGIES, FixedWeighting, PCGrad, Weighting

Factory = Callable[[int, list[Tensor], int], Weighting]

# Strategies whose constructor does not follow the convention
# ``cls(num_tasks, *, shared=..., seed=...)`` (each keyword only when it is accepted).
FACTORIES: dict[type[Weighting], Factory] = {
    FixedWeighting: lambda t, shared, seed: FixedWeighting(torch.linspace(1.0, 2.0, t)),
}

# Not equivariant by design: PCGrad's random projection order depends on the task
# order (for T > 2), fixed multipliers belong to task positions.
ORDER_DEPENDENT = (PCGrad, FixedWeighting)
# Fixed multipliers are not a function of the losses: identical tasks keep them.
NOT_SYMMETRIC = (FixedWeighting,)


def make(cls: type[Weighting], num_tasks: int, shared: list[Tensor], seed: int = 0) -> Weighting:
    """Build a strategy with the conventional keywords it accepts."""
    if cls in FACTORIES:
        return FACTORIES[cls](num_tasks, shared, seed)
    accepted = inspect.signature(cls).parameters
    kwargs: dict[str, object] = {}
    if "shared" in accepted:
        kwargs["shared"] = shared
    if "seed" in accepted:
        kwargs["seed"] = seed
    return cls(num_tasks, **kwargs)


@dataclass
class Run:
    weights: list[Tensor]  # the weights backward returned at each step, in task order
    final: Tensor  # strategy.weights after the run, in task order
    trunk_grad: Tensor  # the trunk's gradient at the last step
    head_grads: Tensor  # each head's gradient at the last step, in task order
    strategy: Weighting


def drive(
    cls: type[Weighting],
    num_tasks: int = 3,
    *,
    dtype: torch.dtype = torch.float32,
    perm: list[int] | None = None,
    symmetric: bool = False,
    steps: int = 6,
    seed: int = 0,
) -> Run:
    """Train a trunk and ``num_tasks`` heads for a few steps through the protocol.

    ``perm`` stacks the losses in that task order (results are mapped back to the
    original order); ``symmetric`` makes every task identical.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 5, generator=gen, dtype=dtype)
    trunk = torch.randn(6, 5, generator=gen, dtype=dtype).requires_grad_()
    heads = torch.randn(num_tasks, 6, generator=gen, dtype=dtype)
    targets = torch.randn(num_tasks, 16, generator=gen, dtype=dtype)
    scales = torch.linspace(0.5, 3.0, num_tasks, dtype=dtype)
    if symmetric:
        heads, targets, scales = (
            heads[:1].expand_as(heads),
            targets[:1].expand_as(targets),
            1 + 0 * scales,
        )
    heads = heads.clone().requires_grad_()
    order = list(range(num_tasks)) if perm is None else list(perm)
    strategy = make(cls, num_tasks, [trunk], seed).to(dtype)
    optimizer = torch.optim.SGD([trunk, heads, *strategy.parameters()], lr=0.02)
    returned, epoch = [], []
    for step in range(steps):
        optimizer.zero_grad()
        features = torch.tanh(x @ trunk.T)
        task_losses = [
            scales[i] * (features @ heads[i] - targets[i]).pow(2).mean() for i in range(num_tasks)
        ]
        losses = torch.stack([task_losses[i] for i in order])
        weights = strategy.backward(losses)
        assert weights.shape == (num_tasks,) and weights.dtype == dtype
        assert weights.requires_grad is False
        returned.append(_unpermute(weights, order))
        trunk_grad, head_grads = trunk.grad.clone(), heads.grad.clone()
        for p in [trunk, heads, *strategy.parameters()]:
            assert p.grad is not None and torch.isfinite(p.grad).all()
        optimizer.step()
        epoch.append(losses.detach())
        if step % 2 == 1:
            strategy.epoch_end(torch.stack(epoch).mean(dim=0))
            epoch = []
    return Run(returned, _unpermute(strategy.weights, order), trunk_grad, head_grads, strategy)


def _unpermute(values: Tensor, order: list[int]) -> Tensor:
    out = torch.empty_like(values)
    out[order] = values
    return out


def check_properties(cls: type[Weighting], num_tasks: int = 3) -> None:
    """Every shared property of one registered strategy."""
    for dtype in (torch.float32, torch.float64):
        run = drive(cls, num_tasks, dtype=dtype)
        tol = {"rtol": 1e-5, "atol": 1e-5}
        for weights in [*run.weights, run.final.to(dtype)]:
            assert torch.isfinite(weights).all() and (weights >= 0).all()
            torch.testing.assert_close(
                weights.sum(), torch.tensor(float(num_tasks), dtype=dtype), **tol
            )
        again = drive(cls, num_tasks, dtype=dtype)
        for a, b in zip(run.weights, again.weights):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(run.trunk_grad, again.trunk_grad, rtol=0, atol=0)
    if not issubclass(cls, ORDER_DEPENDENT):
        run = drive(cls, num_tasks, dtype=torch.float64)
        permuted = drive(cls, num_tasks, dtype=torch.float64, perm=[2, 0, 1])
        for a, b in zip(run.weights, permuted.weights):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(run.trunk_grad, permuted.trunk_grad)
        torch.testing.assert_close(run.head_grads, permuted.head_grads)
    if not issubclass(cls, NOT_SYMMETRIC):
        run = drive(cls, num_tasks, dtype=torch.float64, symmetric=True)
        for weights in run.weights:
            torch.testing.assert_close(weights, torch.ones(num_tasks, dtype=torch.float64))


def registered() -> tuple[type[Weighting], ...]:
    """The registry under test."""
    return STRATEGIES


def all_subclasses(cls: type = mlh.Weighting) -> set[type]:
    """Every subclass of ``cls`` defined in the package (not in tests)."""
    found = set()
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("multiloss_helpers"):
            found.add(sub)
        found |= all_subclasses(sub)
    return found
