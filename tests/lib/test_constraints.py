"""mlh.Constraints: the closed-form optimum of a convex problem, with one active and one
inactive constraint, by hand and through mlh.fit; damping; dtypes; bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import multiloss_helpers as mlh

# min (t1 - 2)^2 + (t2 - 2)^2  s.t.  t1 + t2 <= 2 (active)  and  t1 <= 5 (inactive).
# KKT: the projection of (2, 2) onto t1 + t2 = 2 is (1, 1); 2 (t - 2) + lambda_1 (1, 1) = 0
# gives lambda_1 = 2; the inactive constraint has lambda_2 = 0.
OPTIMUM = torch.tensor([1.0, 1.0])
MULTIPLIERS = torch.tensor([2.0, 0.0])


def _losses(theta: torch.Tensor) -> torch.Tensor:
    objective = ((theta - 2.0) ** 2).sum()
    return torch.stack([objective, theta.sum(), theta[0]])


def _run(constraints: mlh.Constraints, steps: int, lr: float = 0.05) -> torch.Tensor:
    theta = torch.zeros(2, requires_grad=True)
    optimizer = torch.optim.SGD([theta], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        constraints.backward(_losses(theta))
        optimizer.step()
    return theta.detach()


@pytest.mark.parametrize("damping", [0.0, 1.0, 5.0])
def test_the_closed_form_optimum_and_multipliers_are_reached(damping):
    constraints = mlh.Constraints([2.0, 5.0], lr=0.5, damping=damping)
    theta = _run(constraints, 2000)
    torch.testing.assert_close(theta, OPTIMUM, atol=1e-4, rtol=0)
    torch.testing.assert_close(constraints.multipliers, MULTIPLIERS, atol=1e-4, rtol=0)
    assert constraints.multipliers[1] == 0  # inactive: clamped at exactly 0


def test_damping_settles_where_plain_descent_ascent_keeps_circling():
    # a large ascent step: plain descent-ascent has not settled after 2000 steps
    plain = mlh.Constraints([2.0, 5.0], lr=2.0)
    damped = mlh.Constraints([2.0, 5.0], lr=2.0, damping=5.0)
    plain_error = (_run(plain, 2000) - OPTIMUM).abs().max()
    damped_error = (_run(damped, 2000) - OPTIMUM).abs().max()
    print(f"plain {plain_error:.3g}, damped {damped_error:.3g}")
    assert plain_error > 0.05
    assert damped_error < 1e-4


class _Point(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(2))


def test_it_plugs_into_fit_as_a_weighting_strategy():
    model = _Point()
    constraints = mlh.Constraints([2.0, 5.0], lr=0.5, damping=1.0)

    def loss_fn(model, batch):
        objective, total, first = _losses(model.theta)
        return objective, {"objective": objective, "sum": total, "first": first}

    history = mlh.fit(
        model,
        loss_fn,
        [torch.zeros(1)] * 50,
        torch.optim.SGD(model.parameters(), lr=0.05),
        epochs=20,
        progress=False,
        weighting=constraints,
    )
    torch.testing.assert_close(model.theta.detach(), OPTIMUM, atol=1e-4, rtol=0)
    torch.testing.assert_close(constraints.multipliers, MULTIPLIERS, atol=1e-4, rtol=0)
    logged = history.steps("weight/sum")
    assert len(logged) == 1000 and logged[-1] == pytest.approx(2.0, abs=1e-3)
    assert history.steps("weight/objective")[-1] == 1.0


def test_the_step_and_its_returned_weights():
    constraints = mlh.Constraints([1.0, 0.0], lr=0.5, damping=2.0, init=0.25)
    theta = torch.tensor([3.0, -1.0], requires_grad=True)
    losses = torch.stack([theta.pow(2).sum(), theta[0], theta[1]])  # g = (2, -1)
    weights = constraints.backward(losses)
    # step multipliers max(0, 0.25 + 2 g) = (4.25, 0); update max(0, 0.25 + 0.5 g) = (1.25, 0)
    torch.testing.assert_close(weights, torch.tensor([1.0, 4.25, 0.0]))
    torch.testing.assert_close(constraints.multipliers, torch.tensor([1.25, 0.0]))
    torch.testing.assert_close(theta.grad, torch.tensor([6.0 + 4.25, -2.0]))
    assert torch.equal(constraints.weights, torch.tensor([1.0, 1.25, 0.0]))
    assert "bounds=[1.0, 0.0]" in repr(constraints)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_weights_come_back_in_the_losses_dtype(dtype):
    constraints = mlh.Constraints([0.5], damping=2.0, init=1.0)
    losses = torch.tensor([0.7, 2.3], dtype=dtype, requires_grad=True)
    weights = constraints.backward(losses)
    assert weights.dtype == dtype and losses.grad.dtype == dtype
    expected = 1.0 + 2.0 * (losses[1].double().item() - 0.5)
    assert weights[1].double().item() == pytest.approx(expected, rel=torch.finfo(dtype).eps)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (["2.0"], {}, TypeError, "`bounds` must be a sequence"),
        ([[]], {}, ValueError, "at least one"),
        ([[float("nan")]], {}, ValueError, r"`bounds\[0\]` must be finite"),
        ([torch.ones(2, 2)], {}, ValueError, "one level per constraint"),
        ([[1.0]], {"lr": 0.0}, ValueError, "`lr` must be > 0"),
        ([[1.0]], {"damping": -1.0}, ValueError, "`damping` must be >= 0"),
        ([[1.0]], {"init": -0.5}, ValueError, "`init` must be >= 0"),
    ],
)
def test_bad_options_are_refused_by_name(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.Constraints(*args, **kwargs)


def test_float64_bounds_keep_their_precision():
    # 0.3 in float32 is 1.2e-8 above 0.3: a float64 problem would stop short of its level
    constraints = mlh.Constraints(torch.tensor([0.3], dtype=torch.float64), init=1.0)
    assert constraints.bounds.dtype == constraints.multipliers.dtype == torch.float64
    losses = torch.tensor([2.0, 0.3], dtype=torch.float64, requires_grad=True)
    constraints.backward(losses)  # exactly at the level: the multiplier does not move
    assert constraints.multipliers.item() == 1.0
    assert mlh.Constraints([0.3]).bounds.dtype == torch.float32  # floats: float32


def test_separable_problems_share_one_object():
    # one constraint per copy of a separable problem: each multiplier is its own copy's
    both = mlh.Constraints([2.0, 1.0], lr=0.5)
    theta = torch.zeros(2, 2, requires_grad=True)
    optimizer = torch.optim.SGD([theta], lr=0.05)
    for _ in range(1000):
        optimizer.zero_grad()
        objective = ((theta - 2.0) ** 2).sum()
        both.backward(torch.cat([objective[None], theta.sum(1)]))
        optimizer.step()
    # copy k: the projection of (2, 2) onto t1 + t2 = b_k, lambda_k = 4 - b_k
    torch.testing.assert_close(theta.detach(), torch.tensor([[1.0, 1.0], [0.5, 0.5]]))
    torch.testing.assert_close(both.multipliers, torch.tensor([2.0, 3.0]))


def test_bad_losses_are_refused_by_name():
    constraints = mlh.Constraints([1.0])
    with pytest.raises(ValueError, match=r"`losses` must have shape \(2,\)"):
        constraints.backward(torch.ones(3, requires_grad=True))
    with pytest.raises(ValueError, match="no graph"):
        constraints.backward(torch.ones(2))
