"""The multi-class focal kernel's buffers and fast paths (issue 20, E: the kernel was rewritten).

The forward pass keeps one (N, C) buffer that the first backward pass turns into the
gradient in place; these tests pin what that must not change: a second backward through a
retained graph, ``ignore_index`` inside the class range, narrow target dtypes, and values
and gradients against a float64 reference over random shapes with extreme and masked logits.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import multiloss_helpers as mlh


def _reference(logits, target, gamma, ignore_index=-100):
    """(1 - p_t)^gamma * -log p_t, masked, mean over the kept rows, in float64."""
    keep = target != ignore_index
    log_prob = torch.log_softmax(logits.double(), dim=1)
    log_pt = log_prob.gather(1, (target * keep).unsqueeze(1)).squeeze(1)
    loss = -((-torch.expm1(log_pt)) ** gamma) * log_pt
    return (loss * keep).sum() / keep.sum()


@pytest.mark.parametrize("num_classes", [4, 200])  # both kernels
def test_a_second_backward_through_a_retained_graph_gives_the_same_gradient(num_classes):
    x = torch.randn(64, num_classes, requires_grad=True)
    t = torch.randint(num_classes, (64,))
    loss = mlh.focal_loss(x, t)
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x, retain_graph=True)
    loss.backward()
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, first, rtol=0, atol=0)


def test_ignore_index_inside_the_class_range():
    x = torch.randn(30, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randint(5, (30,))
    ours = mlh.focal_loss(x, t, gamma=0.0, ignore_index=2)
    torch.testing.assert_close(ours, F.cross_entropy(x, t, ignore_index=2))
    ours = mlh.focal_loss(x, t, gamma=2.0, ignore_index=2)
    torch.testing.assert_close(ours, _reference(x, t, 2.0, ignore_index=2))
    (grad,) = torch.autograd.grad(ours, x)
    assert (grad[t == 2] == 0).all() and (grad[t != 2] != 0).any()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_narrow_targets_and_their_ignore_index(dtype):
    x = torch.randn(20, 3, dtype=torch.float64)
    t = torch.randint(3, (20,))
    t[[4, 7]] = 255 if dtype == torch.uint8 else -1
    ignore = int(t[4])
    ours = mlh.focal_loss(x, t.to(dtype), ignore_index=ignore)
    torch.testing.assert_close(ours, _reference(x, t, 2.0, ignore_index=ignore))
    with pytest.raises(ValueError, match="outside \\[0, 3\\)"):
        mlh.focal_loss(x, t.to(dtype), ignore_index=100)


@pytest.mark.parametrize("seed", range(12))
def test_values_and_gradients_match_a_float64_reference(seed):
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 300, (1,), generator=gen))
    c = int(torch.randint(2, 160, (1,), generator=gen))  # both sides of the kernel switch
    spread = float(torch.tensor([0.1, 3.0, 30.0, 1e4])[seed % 4])
    x = spread * torch.randn(n, c, generator=gen)
    x[torch.rand(n, c, generator=gen) < 0.1] = float("-inf")  # masked classes
    t = torch.randint(c, (n,), generator=gen)
    x[torch.arange(n), t] = x[torch.arange(n), t].nan_to_num(neginf=0.0)  # target kept
    gamma = float(torch.tensor([0.5, 1.0, 2.0, 3.5])[seed % 4])
    x32 = x.clone().requires_grad_()
    x64 = x.double().requires_grad_()
    ours, ref = mlh.focal_loss(x32, t, gamma=gamma), _reference(x64, t, gamma)
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=1e-7)
    ours.backward()
    ref.backward()
    assert torch.isfinite(x32.grad).all()
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("margin", [20.0, 30.0, 60.0])
def test_a_confident_sample_keeps_the_digits_of_its_tiny_loss(margin):
    # log p_t = -log1p(sum_{j != t} exp(x_j - x_t)): 1 + 2e-13 would round to 1 in float32
    x = torch.tensor([[margin, 0.0, 0.0], [0.0, 1.0, -1.0]], requires_grad=True)
    t = torch.tensor([0, 1])
    ours = mlh.focal_loss(x, t, gamma=0.5, reduction="none")
    x64 = x.detach().double().requires_grad_()
    others = torch.exp(x64 - x64.gather(1, t[:, None])).scatter(1, t[:, None], 0.0)
    log_pt = -torch.log1p(others.sum(1))  # float64, the target's term left out exactly
    ref = -((-torch.expm1(log_pt)) ** 0.5) * log_pt
    assert ours[0] > 0
    torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=0)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-4, atol=1e-30)


def test_a_row_whose_exponent_overflows_takes_the_row_maximum():
    x = torch.tensor([[0.0, 200.0, 1.0], [2.0, 0.0, 1.0]], requires_grad=True)  # e^200: inf
    t = torch.tensor([0, 0])
    ours = mlh.focal_loss(x, t, gamma=2.0)
    torch.testing.assert_close(ours.double(), _reference(x.detach(), t, 2.0), rtol=1e-6, atol=0)
    ours.backward()
    assert torch.isfinite(x.grad).all()


# Issue 20 regression: an infinite logit gave NaN in every binary kernel, even where the
# loss is exactly 0 (-inf with target 0, +inf with target 1: a masked output).
@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (None, 0.0), (0.25, 0.5), (None, 1.0)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_binary_infinite_logits_give_their_limits(alpha, gamma, reduction, soft):
    inf = float("inf")
    finite_x, finite_t = [1.5, -0.5], [0.0, 0.3 if soft else 1.0]
    # (logit, target, its loss): 0 where the logit is right, inf where it is wrong
    cases = [(-inf, 0.0, 0.0), (inf, 1.0, 0.0), (-inf, 1.0, inf), (inf, 0.0, inf)]
    x = torch.tensor(finite_x + [c[0] for c in cases], requires_grad=True)
    t = torch.tensor(finite_t + [c[1] for c in cases])
    value = mlh.binary_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    value.sum().backward()
    # the limits: the same loss at logits of +-1e3 (sigmoid exactly 0 or 1 in float64)
    ref_x = torch.tensor(finite_x + [math.copysign(1e3, c[0]) for c in cases], dtype=torch.float64)
    ref_x.requires_grad_(True)
    ref = mlh.binary_focal_loss(ref_x, t.double(), alpha=alpha, gamma=gamma, reduction=reduction)
    ref.sum().backward()
    a = [1.0] * 4 if alpha is None else [0.75, 0.25, 0.25, 0.75]
    expected = torch.tensor([c[2] * a[i] for i, c in enumerate(cases)])
    if reduction == "none":
        torch.testing.assert_close(value[:2], ref[:2].float())
        torch.testing.assert_close(value[2:], expected)  # exactly 0, or inf
    else:
        assert value.item() == inf
    torch.testing.assert_close(x.grad, ref_x.grad.float())
    assert x.grad[2:4].abs().max() == 0  # a masked logit gets no gradient


def test_binary_nan_logits_stay_nan():
    x = torch.tensor([float("nan"), float("inf"), 0.0], requires_grad=True)
    value = mlh.binary_focal_loss(x, torch.tensor([0.0, 1.0, 1.0]), reduction="none")
    value.sum().backward()
    assert value[0].isnan() and value[1] == 0 and x.grad[1] == 0


# Issue 20 regression: the differentiable route (create_graph=True, or a target that
# requires grad) gave NaN at infinite logits too
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_binary_infinite_logits_on_the_differentiable_route(gamma):
    inf = float("inf")
    x = torch.tensor([-inf, inf, -inf, 0.5], requires_grad=True)
    t = torch.tensor([0.0, 1.0, 1.0, 1.0], requires_grad=True)
    value = mlh.binary_focal_loss(x, t, alpha=0.25, gamma=gamma)
    dx, dt = torch.autograd.grad(value, (x, t), create_graph=True)
    (d2x,) = torch.autograd.grad(dx.sum(), x)
    ref_x = torch.tensor([-1e3, 1e3, -1e3, 0.5], dtype=torch.float64, requires_grad=True)
    ref = mlh.binary_focal_loss(ref_x, t.detach().double(), alpha=0.25, gamma=gamma)
    (ref_dx,) = torch.autograd.grad(ref, ref_x)
    assert value.item() == inf
    torch.testing.assert_close(dx.detach(), ref_dx.float())
    assert torch.isfinite(d2x).all() and d2x[:3].abs().max() == 0
    # dL/dt grows with the logit: infinite wherever it is not 0 (here at -inf with t = 1)
    assert torch.isinf(dt[2]) and torch.isfinite(dt[3])
