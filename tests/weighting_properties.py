"""Property checks shared by every weighting strategy (applied by parametrize).

Each strategy is wrapped as ``weights_for(losses_history) -> (T,) weights`` so that
one set of checks covers them all: finite, right shape, positive and summing to T
where that is the rule, equal losses give equal weights, and permuting the tasks
permutes the weights.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import multiloss_helpers as mlh

WeightFn = Callable[[torch.Tensor], torch.Tensor]


def dwa_weights(history: torch.Tensor) -> torch.Tensor:
    """DWA after feeding every epoch of ``history`` (shape (E, T))."""
    dwa = mlh.DWA(history.shape[1])
    for epoch in history:
        weights = dwa.step(epoch)
    return weights


def gradnorm_weights(history: torch.Tensor) -> torch.Tensor:
    """GradNorm after one update per row, on a model whose task losses equal the row."""
    num_tasks = history.shape[1]
    gradnorm = mlh.GradNorm(num_tasks, alpha=1.5)
    shared = torch.ones(3, requires_grad=True)
    for epoch in history:
        # loss_i = epoch_i * mean(shared**2): gradient norm proportional to the loss
        losses = torch.stack([v * (shared**2).mean() for v in epoch])
        weights = gradnorm.update(losses, [shared])
    return weights


def uncertainty_weights(history: torch.Tensor) -> torch.Tensor:
    """Uncertainty weighting after a few SGD steps on the log-variances."""
    weighting = mlh.UncertaintyWeighting(history.shape[1])
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.1)
    for epoch in history:
        for _ in range(20):
            optimizer.zero_grad()
            weighting(epoch).backward()
            optimizer.step()
    return 2 * weighting.weights  # 1/2 e^{-s}: scale so that the start is all ones


STRATEGIES: dict[str, tuple[WeightFn, bool]] = {
    # name: (weights from a loss history, do the weights sum to T?)
    "DWA": (dwa_weights, True),
    "GradNorm": (gradnorm_weights, True),
    "UncertaintyWeighting": (uncertainty_weights, False),
}


def check_properties(weights_for: WeightFn, sums_to_t: bool, num_tasks: int = 4) -> None:
    """Assert the shared properties of a strategy on random and equal histories."""
    gen = torch.Generator().manual_seed(0)
    history = torch.rand(3, num_tasks, generator=gen) + 0.5
    weights = weights_for(history)
    assert weights.shape == (num_tasks,)
    assert torch.isfinite(weights).all()
    assert (weights > 0).all()
    if sums_to_t:
        torch.testing.assert_close(weights.sum(), torch.tensor(float(num_tasks)))
    equal = weights_for(torch.full((3, num_tasks), 0.7))
    torch.testing.assert_close(equal, equal.mean().expand(num_tasks))
    perm = torch.randperm(num_tasks, generator=gen)
    torch.testing.assert_close(weights_for(history[:, perm]), weights[perm], rtol=1e-4, atol=1e-5)
