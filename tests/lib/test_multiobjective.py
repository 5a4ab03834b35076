"""pareto_front, min_norm_weights and mgda: small cases by hand, optimality, precision
against a float64 brute force, bad inputs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import multiloss_helpers as mlh
from multiloss_helpers.multiobjective import _RIDGE


def _closed_form_two(g):
    a, b, c = g[0] @ g[0], g[0] @ g[1], g[1] @ g[1]
    gamma = ((c - b) / (a + c - 2 * b)).clamp(0, 1)
    return torch.stack([gamma, 1 - gamma])


class TestMinNormWeights:
    @pytest.mark.parametrize("num_tasks", [2, 3, 5, 8, 16])
    @pytest.mark.parametrize("dim", [2, 10, 300])
    def test_optimality_condition(self, num_tasks, dim):
        # KKT on the simplex: g_i . d >= |d|^2 for every task, with d = w @ G
        gen = torch.Generator().manual_seed(num_tasks * 1000 + dim)
        for trial in range(5):
            grads = torch.randn(num_tasks, dim, generator=gen, dtype=torch.float64)
            grads *= 10 * torch.rand(num_tasks, 1, generator=gen, dtype=torch.float64)
            if trial % 2:
                grads[1] = -0.5 * grads[0] + 0.01 * torch.randn(dim, generator=gen)
            w = mlh.min_norm_weights(grads)
            assert w.shape == (num_tasks,) and (w >= 0).all()
            torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))
            d = w @ grads
            scale = grads.norm(dim=1).max() ** 2
            assert ((grads @ d - d @ d) / scale >= -1e-5).all()
            # no point of the simplex does better: compare with random ones
            others = torch.distributions.Dirichlet(torch.ones(num_tasks)).sample((200,)).double()
            assert (d @ d <= (others @ grads).pow(2).sum(1).min() * (1 + 1e-6) + 1e-12).all()

    def test_two_tasks_is_the_closed_form(self):
        gen = torch.Generator().manual_seed(0)
        for _ in range(20):
            grads = torch.randn(2, 7, generator=gen, dtype=torch.float64)
            torch.testing.assert_close(mlh.min_norm_weights(grads), _closed_form_two(grads))

    def test_two_tasks_special_cases(self):
        same = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
        torch.testing.assert_close(mlh.min_norm_weights(same), torch.tensor([0.5, 0.5]))
        # g0 inside the hull's shortest end: all the weight on the shorter gradient
        torch.testing.assert_close(
            mlh.min_norm_weights(torch.tensor([[1.0, 0.0], [3.0, 0.0]])), torch.tensor([1.0, 0.0])
        )
        opposite = mlh.min_norm_weights(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
        torch.testing.assert_close(opposite, torch.tensor([0.5, 0.5]))  # d = 0: Pareto-stationary

    def test_one_task(self):
        torch.testing.assert_close(mlh.min_norm_weights(torch.ones(1, 3)), torch.ones(1))

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
    def test_low_precision_and_huge_gradients(self, dtype):
        base = torch.tensor([[1.0, 0.0, 0.5], [-1.0, 1.0, 0.0], [0.2, -0.3, 1.0]])
        want = mlh.min_norm_weights(base.double())
        for scale in (1.0, 1e4 if dtype == torch.float16 else 1e20):
            w = mlh.min_norm_weights((base * scale).to(dtype))
            assert w.dtype == dtype
            torch.testing.assert_close(w.double(), want, rtol=0, atol=1e-2)

    def test_mgda_is_weights_times_grads(self):
        grads = torch.randn(4, 9)
        torch.testing.assert_close(mlh.mgda(grads), mlh.min_norm_weights(grads) @ grads)
        assert mlh.mgda(grads).shape == (9,)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
    def test_identical_gradients_share_their_weight_in_low_precision(self, dtype):
        # in float32 the ridge (1 + 1e-8 == 1) was lost: [1, 0, 0] instead of thirds
        grads = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=dtype)
        want = torch.tensor([0.25, 0.25, 0.5], dtype=dtype)
        torch.testing.assert_close(mlh.min_norm_weights(grads), want)
        thirds = mlh.min_norm_weights(torch.ones(3, 4, dtype=dtype))
        torch.testing.assert_close(thirds, torch.full((3,), 1 / 3, dtype=dtype), atol=2e-3, rtol=0)

    @pytest.mark.parametrize("num_tasks", [2, 3])
    def test_grads_that_require_grad(self, num_tasks):
        # T > 2 raised "Can't call numpy() on Tensor that requires grad"
        grads = torch.randn(num_tasks, 5, requires_grad=True)
        weights = mlh.min_norm_weights(grads)
        assert not weights.requires_grad
        torch.testing.assert_close(weights, mlh.min_norm_weights(grads.detach()))
        direction = mlh.mgda(grads)
        direction.sum().backward()  # the graph through the gradients, weights constant
        torch.testing.assert_close(grads.grad, weights[:, None].expand(num_tasks, 5))

    @pytest.mark.parametrize(
        ("grads", "error", "match"),
        [
            (torch.tensor([[1.0, math.nan], [0.0, 1.0]]), ValueError, "must be finite"),
            (torch.ones(3), ValueError, r"shape \(T, P\)"),
            (torch.ones(0, 3), ValueError, r"shape \(T, P\)"),
            # P = 0 raised torch's "amax(): Expected reduction dim 1 to have non-zero size"
            (torch.ones(3, 0), ValueError, r"P >= 1, got \(3, 0\)"),
            (torch.ones(2, 0), ValueError, r"P >= 1, got \(2, 0\)"),
            (torch.ones(2, 2, dtype=torch.long), TypeError, "floating-point"),
            ([[1.0]], TypeError, r"\(T, P\) tensor"),
        ],
    )
    def test_bad_inputs(self, grads, error, match):
        with pytest.raises(error, match=match):
            mlh.min_norm_weights(grads)
        with pytest.raises(error, match=match):
            mlh.mgda(grads)


class TestParetoFront:
    def test_hand_case_with_duplicates(self):
        points = torch.tensor(
            [[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [2.0, 2.0], [4.0, 1.0], [4.0, 4.0], [1.0, 5.0]]
        )
        want = torch.tensor([True, True, False, True, True, False, False])
        torch.testing.assert_close(mlh.pareto_front(points), want)

    def test_weakly_dominated_point_is_dropped(self):
        # (1, 2) is no worse than (1, 3) everywhere and better once
        torch.testing.assert_close(
            mlh.pareto_front(torch.tensor([[1.0, 2.0], [1.0, 3.0]])), torch.tensor([True, False])
        )

    def test_single_point_equal_points_and_one_objective(self):
        assert mlh.pareto_front(torch.tensor([[3.0, 1.0]])).tolist() == [True]
        assert mlh.pareto_front(torch.ones(4, 3)).all()
        assert mlh.pareto_front(torch.tensor([[2.0], [1.0], [1.0]])).tolist() == [False, True, True]

    def test_integer_and_infinite_values(self):
        assert mlh.pareto_front(torch.tensor([[1, 2], [2, 1], [2, 2]])).tolist() == [
            True,
            True,
            False,
        ]
        assert mlh.pareto_front(torch.tensor([[math.inf, 0.0], [0.0, 1.0]])).tolist() == [
            True,
            True,
        ]

    def test_matches_a_loop_on_random_points(self):
        points = torch.randint(0, 5, (60, 3)).float()
        mask = mlh.pareto_front(points)
        for i, a in enumerate(points):
            dominated = any(((b <= a).all() and (b < a).any()) for b in points)
            assert bool(mask[i]) is not dominated

    def test_empty(self):
        assert mlh.pareto_front(torch.zeros(0, 2)).shape == (0,)

    @pytest.mark.parametrize(
        ("points", "error", "match"),
        [
            (torch.tensor([[1.0, math.nan]]), ValueError, "must not contain NaN"),
            (torch.ones(3), ValueError, r"shape \(N, K\)"),
            (torch.ones(3, 0), ValueError, r"shape \(N, K\)"),
            ([[1.0, 2.0]], TypeError, r"\(N, K\) tensor"),
            (torch.ones(2, 2, dtype=torch.bool), TypeError, "real numbers"),
        ],
    )
    def test_bad_inputs(self, points, error, match):
        with pytest.raises(error, match=match):
            mlh.pareto_front(points)


def test_min_norm_accelerator_method_on_the_cpu():
    # the fixed-iteration method used on accelerators, checked here on the CPU
    from multiloss_helpers.multiobjective import _min_norm_many

    gen = torch.Generator().manual_seed(0)
    for num_tasks in (3, 5, 8):
        grads = torch.randn(num_tasks, 20, generator=gen)
        grads[1] = -0.5 * grads[0]
        gram = grads @ grads.T / (grads.norm(dim=1).max() ** 2)
        w = _min_norm_many(gram, 200, 0.0)
        exact = mlh.min_norm_weights(grads)
        assert (w >= 0).all() and abs(float(w.sum()) - 1) < 1e-5
        assert w @ gram @ w <= exact @ gram @ exact + 1e-4


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
