"""min_norm_weights on nearly parallel gradients, against a float64 brute force (issue 20, D7)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import multiloss_helpers as mlh
from multiloss_helpers.multiobjective import _RIDGE


def test_two_nearly_parallel_gradients_in_float32():
    # the Gram matrix's a + c - 2b is 0 in float32 here, which gave [0.5, 0.5]
    grads = torch.tensor([[1.0, 0.0], [1.0, 1e-4]])
    weights = mlh.min_norm_weights(grads)
    assert weights.dtype == torch.float32
    torch.testing.assert_close(weights, torch.tensor([1.0, 0.0]), rtol=0, atol=1e-6)


def _brute_force(grads: np.ndarray, ridge: float) -> np.ndarray:
    """The simplex minimiser of |w G|^2 + ridge |w|^2: every support, its KKT system, float64.

    ``ridge`` is relative to the largest squared row norm, as in ``min_norm_weights``.
    """
    gram = grads @ grads.T
    gram = gram + ridge * gram.diagonal().max() * np.eye(len(gram))
    best, best_value = None, np.inf
    for size in range(1, len(gram) + 1):
        for support in itertools.combinations(range(len(gram)), size):
            sub = gram[np.ix_(support, support)]
            system = np.block(
                [[2 * sub, np.ones((size, 1))], [np.ones((1, size)), np.zeros((1, 1))]]
            )
            rhs = np.zeros(size + 1)
            rhs[-1] = 1.0
            try:
                solution = np.linalg.solve(system, rhs)[:size]
            except np.linalg.LinAlgError:
                continue
            if (solution < -1e-12).any():
                continue
            weights = np.zeros(len(gram))
            weights[list(support)] = solution
            value = weights @ gram @ weights
            if value < best_value:
                best, best_value = weights, value
    assert best is not None
    return best


def _ill_conditioned(num_tasks: int, seed: int) -> torch.Tensor:
    """float32 rows that differ from a common row by 1e-5 to 1e-2 of its size."""
    gen = torch.Generator().manual_seed(seed)
    size = int(torch.randint(3, 40, (1,), generator=gen))
    base = torch.randn(size, generator=gen) * 10 ** float(
        torch.empty(1).uniform_(-3, 3, generator=gen)
    )
    spread = 10 ** float(torch.empty(1).uniform_(-5, -2, generator=gen))
    noise = torch.randn(num_tasks, size, generator=gen) * base.norm() * spread / size**0.5
    return (base + noise).float()


@pytest.mark.parametrize("seed", range(40))
def test_two_tasks_match_the_float64_brute_force(seed):
    grads = _ill_conditioned(2, seed)
    exact = _brute_force(grads.double().numpy(), ridge=0.0)
    ours = mlh.min_norm_weights(grads)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.double().numpy(), exact, rtol=0, atol=1e-6)


@pytest.mark.parametrize("num_tasks", [3, 4])
@pytest.mark.parametrize("seed", range(15))
def test_more_tasks_match_the_float64_brute_force(num_tasks, seed):
    # the documented objective: the ridge that makes the minimiser unique is part of it
    grads = _ill_conditioned(num_tasks, seed)
    exact = _brute_force(grads.double().numpy(), ridge=_RIDGE)
    ours = mlh.min_norm_weights(grads)
    np.testing.assert_allclose(ours.double().numpy(), exact, rtol=0, atol=1e-5)
