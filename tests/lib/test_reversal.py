"""grad_reverse, GradientReversal and dann_scale (make_domain_data: test_data.py)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import multiloss_helpers as mlh


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [0.0, 0.5, 1.0, 3.0])
def test_forward_is_identity_and_backward_is_minus_scale(scale, dtype):
    x = torch.randn(4, 3, dtype=dtype, requires_grad=True)
    upstream = torch.randn(4, 3, dtype=dtype)
    y = mlh.grad_reverse(x, scale)
    torch.testing.assert_close(y, x)
    y.backward(upstream)
    torch.testing.assert_close(x.grad, -scale * upstream)


def test_scale_one_negates_the_gradient_of_a_loss():
    w = torch.randn(5, requires_grad=True)
    x = torch.randn(8, 5)
    plain = torch.autograd.grad((x @ w).pow(2).mean(), w)[0]
    reversed_ = torch.autograd.grad(mlh.grad_reverse(x @ w).pow(2).mean(), w)[0]
    torch.testing.assert_close(reversed_, -plain)


def test_only_the_layers_below_are_reversed():
    below = torch.nn.Linear(3, 3)
    head = torch.nn.Linear(3, 1)
    x = torch.randn(6, 3)
    loss = head(mlh.grad_reverse(below(x))).pow(2).mean()
    loss.backward()
    head_grad = head.weight.grad.clone()
    below_grad = below.weight.grad.clone()
    head.zero_grad()
    below.zero_grad()
    head(below(x)).pow(2).mean().backward()
    torch.testing.assert_close(head.weight.grad, head_grad)
    torch.testing.assert_close(below.weight.grad, -below_grad)


def test_module_matches_function_and_scale_is_settable():
    layer = mlh.GradientReversal(0.2)
    layer.scale = 0.7
    x = torch.randn(3, requires_grad=True)
    layer(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), -0.7))
    assert repr(layer) == "GradientReversal(scale=0.7)"
    rebuilt = eval(repr(layer), {"GradientReversal": mlh.GradientReversal})
    assert isinstance(rebuilt, mlh.GradientReversal) and rebuilt.scale == 0.7
    assert repr(torch.nn.Sequential(layer)) == (
        "Sequential(\n  (0): GradientReversal(scale=0.7)\n)"
    )


@pytest.mark.parametrize(
    ("scale", "error", "match"),
    [
        (-1.0, ValueError, "`scale` must be >= 0"),
        (float("nan"), ValueError, "finite"),
        ("1", TypeError, "`scale` must be a real number"),
    ],
)
def test_bad_scale(scale, error, match):
    with pytest.raises(error, match=match):
        mlh.grad_reverse(torch.ones(2), scale)
    with pytest.raises(error, match=match):
        mlh.GradientReversal(scale)


def test_grad_reverse_needs_a_tensor():
    with pytest.raises(TypeError, match=r"`x` must be a torch\.Tensor"):
        mlh.grad_reverse([1.0])


def test_dann_scale_schedule():
    assert mlh.dann_scale(0.0) == 0.0
    values = [mlh.dann_scale(p / 10) for p in range(11)]
    assert all(b > a for a, b in itertools.pairwise(values))
    assert mlh.dann_scale(0.3, gamma=10.0) == pytest.approx(2 / (1 + math.exp(-3)) - 1)
    assert mlh.dann_scale(1.0, final=0.5) == pytest.approx(0.5 * (2 / (1 + math.exp(-10)) - 1))
    with pytest.raises(ValueError, match="`progress` must be <= 1"):
        mlh.dann_scale(1.5)
    with pytest.raises(ValueError, match="`gamma` must be > 0"):
        mlh.dann_scale(0.5, gamma=0.0)


# Issue 20 regression: GradientReversal before an in-place activation (D)
def test_gradient_reversal_before_an_in_place_activation():
    x = torch.randn(4, 3, requires_grad=True)
    net = nn.Sequential(mlh.GradientReversal(scale=0.5), nn.ReLU(inplace=True))
    net(x).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * (x.detach() > 0).float())


# Issue 20 regression: GradientReversal before an in-place activation (D)
def test_grad_reverse_returns_a_new_tensor():
    x = torch.randn(3, requires_grad=True)
    y = mlh.grad_reverse(x)
    assert y.data_ptr() != x.data_ptr()
    assert torch.equal(y, x)
