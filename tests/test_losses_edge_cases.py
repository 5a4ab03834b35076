"""Regression tests from the review of the chunked binary focal kernels (REVIEW.md)."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh
import multiloss_helpers._focal_kernels as losses


def _grad_hard_float64(x: torch.Tensor, t: torch.Tensor, alpha, gamma: float) -> torch.Tensor:
    """dL/dx for targets in {0, 1}, in float64, as a sum of non-negative products."""
    x, t = x.double(), t.double()
    z = (2 * t - 1) * x
    q, p = torch.sigmoid(-z), torch.sigmoid(z)
    ce = torch.relu(-z) + torch.log1p(torch.exp(-z.abs()))
    b = (1 - 2 * t) if alpha is None else ((1 - alpha) - t)
    return b * q.pow(gamma) * (gamma * p * ce + q)


# ------------------------------------------------------------- R1: precision of the reduction
@pytest.mark.parametrize("alpha", [0.25, None])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reduced_binary_loss_keeps_float32_precision(alpha, reduction):
    """The reduced loss over 2**20 float32 elements is as precise as a float32 sum.

    torch.dot over 2**18-element chunks accumulated linearly: 2e-6 relative error (about
    37 ulps, biased) where the per-element losses summed by torch.sum stay within 1e-7.
    """
    gen = torch.Generator().manual_seed(0)
    n = 2**20
    x = 2 * torch.randn(n, generator=gen)
    t = (torch.rand(n, generator=gen) < 0.5).float()
    ours = mlh.binary_focal_loss(x, t, alpha=alpha, gamma=2.0, reduction=reduction)
    per = mlh.binary_focal_loss(x.double(), t.double(), alpha=alpha, gamma=2.0, reduction="none")
    ref = per.sum() if reduction == "sum" else per.mean()
    float32_sum = mlh.binary_focal_loss(x, t, alpha=alpha, gamma=2.0, reduction="none").double()
    float32_sum = float32_sum.sum() if reduction == "sum" else float32_sum.mean()
    assert abs(float32_sum.item() - ref.item()) / ref.item() < 3e-7  # what float32 can do
    assert abs(ours.item() - ref.item()) / ref.item() < 3e-7


# ------------------------------------------- R2: the differentiable route loses the small ce
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.5])
@pytest.mark.parametrize("route", ["create_graph", "target_requires_grad"])
def test_differentiable_route_keeps_precision_of_well_classified_negatives(gamma, route):
    """create_graph=True or a target requiring grad must give the fast path's dL/dx.

    _binary_grads formed ce = x (1 - t) - logsigmoid(x), which cancels for t = 0, x << 0:
    it is 0 for x < -17 in float32 and dL/dx was off by up to 78% (gamma=3.5).
    """
    x = -torch.linspace(8.0, 30.0, 45)
    t = torch.zeros_like(x)
    ref = _grad_hard_float64(x, t, 0.25, gamma)
    x_fast = x.clone().requires_grad_()
    (fast,) = torch.autograd.grad(
        mlh.binary_focal_loss(x_fast, t, gamma=gamma, reduction="sum"), x_fast
    )
    normal = ref.abs() > 1e-30  # far from float32's subnormal range
    torch.testing.assert_close(fast.double()[normal], ref[normal], rtol=2e-6, atol=0.0)
    xr = x.clone().requires_grad_()
    if route == "create_graph":
        loss = mlh.binary_focal_loss(xr, t, gamma=gamma, reduction="sum")
        (slow,) = torch.autograd.grad(loss, xr, create_graph=True)
    else:
        tr = t.clone().requires_grad_()
        loss = mlh.binary_focal_loss(xr, tr, gamma=gamma, reduction="sum")
        slow, _ = torch.autograd.grad(loss, (xr, tr))
    torch.testing.assert_close(slow.detach().double()[normal], ref[normal], rtol=2e-6, atol=0.0)


# ------------------------------------------------ R3: second derivatives of confident elements
@pytest.mark.parametrize(
    ("gamma", "alpha", "logit"),
    [(0.0, 0.25, 50.0), (0.1, None, 50.0), (0.5, None, 80.0), (1.5, None, 89.0), (1.5, None, 1e4)],
)
@pytest.mark.parametrize("positive", [True, False])
def test_second_derivative_is_finite_for_well_classified_elements(gamma, alpha, logit, positive):
    """The docstring promises finite gradients for logits up to 1e4, every gamma >= 0, and
    second derivatives; d2L/dx2 was NaN (PowBackward0 of omp ** (gamma - 1))."""
    x = torch.tensor([logit if positive else -logit], requires_grad=True)
    t = torch.tensor([1.0 if positive else 0.0])
    loss = mlh.binary_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction="sum")
    (g,) = torch.autograd.grad(loss, x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(g).all()
    assert torch.isfinite(gg).all(), gg


# ------------------------------------------------------ R4: 1 / numel folded into tiny weights
def test_mean_of_tiny_losses_keeps_relative_precision():
    """Folding 1/numel into every element's weight pushes a confident element's share of the
    mean into float32's subnormal range: 4e-4 relative error for 2**22 elements (x = 80),
    while the mean of the per-element losses is exact."""
    n = 2**22
    x = torch.full((n,), 80.0)
    t = torch.ones(n)
    single = mlh.binary_focal_loss(x[:1], t[:1], gamma=0.0, alpha=0.25)
    assert single.item() > torch.finfo(torch.float32).tiny  # a normal float32 value
    per = mlh.binary_focal_loss(x, t, gamma=0.0, alpha=0.25, reduction="none")
    torch.testing.assert_close(per.mean(), single, rtol=1e-6, atol=0.0)
    ours = mlh.binary_focal_loss(x, t, gamma=0.0, alpha=0.25, reduction="mean")
    torch.testing.assert_close(ours, single, rtol=1e-5, atol=0.0)


# --------------------------------------------------- R5: no gradient is formed without autograd
@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_forward_without_autograd_forms_no_gradient(monkeypatch, context):
    asked = []
    chunks = losses._binary_chunks

    def spy(x, t, alpha, gamma, reduction, need_grad, known_hard=False):
        asked.append(need_grad)
        return chunks(x, t, alpha, gamma, reduction, need_grad, known_hard)

    monkeypatch.setattr(losses, "_binary_chunks", spy)
    x = torch.randn(1000, requires_grad=True)
    t = (torch.rand(1000) < 0.5).float()
    manager = torch.no_grad() if context == "no_grad" else torch.inference_mode()
    with manager:
        loss = mlh.binary_focal_loss(x, t)
    assert asked == [False]
    # and with autograd on, the fast path still works
    asked.clear()
    x.grad = None
    mlh.binary_focal_loss(x, t).backward()
    assert asked == [True]
    torch.testing.assert_close(
        x.grad.double(), _grad_hard_float64(x.detach(), t, 0.25, 2.0) / 1000, rtol=1e-5, atol=1e-9
    )
    assert torch.isfinite(loss)
