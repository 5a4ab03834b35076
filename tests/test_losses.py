"""Focal losses: identities, the alpha_t ratio, gradcheck, extreme logits, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import multiloss_helpers as mlh

REDUCTIONS = ["mean", "sum", "none"]
TOL = {torch.float32: {"rtol": 1e-5, "atol": 1e-6}, torch.float64: {"rtol": 1e-10, "atol": 1e-12}}


def _multiclass(dtype=torch.float64, n=40, c=5, spatial=(), ignore=True):
    logits = (3 * torch.randn(n, c, *spatial, dtype=dtype)).requires_grad_()
    target = torch.randint(c, (n, *spatial))
    if ignore:
        target.view(-1)[:4] = -100
    return logits, target


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("spatial", [(), (3, 2)])
def test_gamma_zero_is_cross_entropy_in_value_and_gradient(dtype, reduction, weighted, spatial):
    logits, target = _multiclass(dtype, spatial=spatial)
    weight = torch.rand(5, dtype=dtype) + 0.1 if weighted else None
    ours = mlh.focal_loss(logits, target, gamma=0.0, weight=weight, reduction=reduction)
    ref = F.cross_entropy(logits, target, weight=weight, reduction=reduction)
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    g_ours = torch.autograd.grad(ours.sum(), logits)[0]
    g_ref = torch.autograd.grad(ref.sum(), logits)[0]
    torch.testing.assert_close(g_ours, g_ref, **TOL[dtype])


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.5])
def test_ratio_to_cross_entropy_is_the_modulating_factor(gamma):
    logits, target = _multiclass(ignore=False)
    weight = torch.rand(5, dtype=torch.float64) + 0.1
    focal = mlh.focal_loss(logits, target, gamma=gamma, weight=weight, reduction="none")
    ce = F.cross_entropy(logits, target, weight=weight, reduction="none")
    p_t = torch.softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(focal / ce, (1 - p_t) ** gamma)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weighted_mean_divides_by_summed_target_weights(gamma, reduction):
    logits, target = _multiclass()
    weight = torch.rand(5, dtype=torch.float64) + 0.1
    per = mlh.focal_loss(logits, target, gamma=gamma, weight=weight, reduction="none")
    valid = target != -100
    assert (per[~valid] == 0).all()
    if reduction == "mean":
        expected = per.sum() / weight[target[valid]].sum()
        torch.testing.assert_close(
            mlh.focal_loss(logits, target, gamma=gamma, weight=weight), expected
        )
    elif reduction == "sum":
        torch.testing.assert_close(
            mlh.focal_loss(logits, target, gamma=gamma, weight=weight, reduction="sum"), per.sum()
        )


@pytest.mark.parametrize("gamma", [0.3, 1.0, 2.0])
def test_gradcheck_multiclass(gamma):
    logits, target = _multiclass(n=6, c=4, spatial=(2,))
    weight = torch.rand(4, dtype=torch.float64) + 0.1
    assert torch.autograd.gradcheck(
        lambda x: mlh.focal_loss(x, target, gamma=gamma, weight=weight), (logits,)
    )


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("scale", [100.0, 1e4])
def test_extreme_logits_stay_finite_multiclass(gamma, scale):
    logits = torch.tensor(
        [[scale, -scale, 0.0], [-scale, scale, 0.0], [0.0, -scale, scale]], requires_grad=True
    )
    target = torch.tensor([0, 0, 2])  # right and confident, wrong and confident, right
    loss = mlh.focal_loss(logits, target, gamma=gamma)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    assert loss > 0


def test_confidently_right_sample_has_no_gradient_for_small_gamma():
    logits = torch.tensor([[50.0, -50.0]], requires_grad=True)
    mlh.focal_loss(logits, torch.tensor([0]), gamma=0.5).backward()
    assert torch.all(logits.grad == 0)


def test_module_equals_function_and_moves_weight():
    logits, target = _multiclass()
    weight = torch.rand(5, dtype=torch.float64)
    module = mlh.FocalLoss(gamma=1.5, weight=weight, reduction="sum")
    torch.testing.assert_close(
        module(logits, target),
        mlh.focal_loss(logits, target, gamma=1.5, weight=weight, reduction="sum"),
    )
    assert "weight" in module.state_dict()
    assert module.to(torch.float32).weight.dtype == torch.float32


def test_all_ignored_gives_nan_like_cross_entropy():
    logits = torch.randn(3, 2)
    target = torch.full((3,), -100)
    assert torch.isnan(mlh.focal_loss(logits, target)) and torch.isnan(
        F.cross_entropy(logits, target)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reduction": "avg"}, ValueError, r"`reduction` must be one of \('mean', 'sum', 'none'\)"),
        ({"gamma": -1.0}, ValueError, "`gamma` must be >= 0"),
        (
            {"weight": torch.ones(4)},
            ValueError,
            r"`weight` must have one entry per class \(5\), got shape \(4,\)",
        ),
        ({"weight": [1.0] * 5}, TypeError, "`weight` must be a tensor"),
        ({"ignore_index": 1.5}, TypeError, "`ignore_index` must be an int"),
    ],
)
def test_focal_bad_arguments(kwargs, error, match):
    logits, target = _multiclass()
    with pytest.raises(error, match=match):
        mlh.focal_loss(logits, target, **kwargs)


@pytest.mark.parametrize(
    ("logits", "target", "error", "match"),
    [
        (
            torch.randn(4, 3),
            torch.tensor([0, 1, 2]),
            ValueError,
            r"`target` must have shape \(4,\)",
        ),
        (torch.randn(4, 3), torch.rand(4), TypeError, "integer class indices"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 3]), ValueError, "class index 3, outside"),
        (torch.randn(4, 3), torch.tensor([0, -1, 2, 1]), ValueError, "class index -1, outside"),
        (
            torch.randn(4),
            torch.tensor([0, 1, 0, 1]),
            ValueError,
            r"`input` must have shape \(N, C\)",
        ),
        (torch.randint(3, (4, 3)), torch.tensor([0, 1, 0, 1]), TypeError, "floating-point logits"),
        ([[0.0, 1.0]], torch.tensor([0]), TypeError, "`input` must be a tensor"),
    ],
)
def test_focal_bad_inputs(logits, target, error, match):
    with pytest.raises(error, match=match):
        mlh.focal_loss(logits, target)


def _torchvision_form(x, t, alpha, gamma):
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    loss = ce * (1 - (p * t + (1 - p) * (1 - t))) ** gamma
    return loss if alpha is None else (alpha * t + (1 - alpha) * (1 - t)) * loss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_alpha_none_gamma_zero_is_bce_with_logits(dtype, reduction):
    x = torch.randn(7, 3, dtype=dtype, requires_grad=True)
    t = torch.rand(7, 3, dtype=dtype)
    ours = mlh.binary_focal_loss(x, t, alpha=None, gamma=0.0, reduction=reduction)
    ref = F.binary_cross_entropy_with_logits(x, t, reduction=reduction)
    torch.testing.assert_close(ours, ref, **TOL[dtype])
    torch.testing.assert_close(
        torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(ref.sum(), x)[0], **TOL[dtype]
    )


@pytest.mark.parametrize("alpha", [None, 0.0, 0.25, 1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_binary_matches_the_reference_formula(alpha, gamma):
    x = (2 * torch.randn(50, dtype=torch.float64)).requires_grad_()
    t = (torch.rand(50) < 0.3).double()
    t[:5] = torch.rand(5, dtype=torch.float64)  # soft targets too
    ours = mlh.binary_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction="none")
    ref = _torchvision_form(x, t, alpha, gamma)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(
        torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(ref.sum(), x)[0]
    )


def test_binary_alpha_t_weights_positives_and_negatives():
    x = torch.randn(100, dtype=torch.float64)
    t = (torch.rand(100) < 0.5).double()
    weighted = mlh.binary_focal_loss(x, t, alpha=0.2, gamma=2.0, reduction="none")
    plain = mlh.binary_focal_loss(x, t, alpha=None, gamma=2.0, reduction="none")
    torch.testing.assert_close(weighted[t == 1], 0.2 * plain[t == 1])
    torch.testing.assert_close(weighted[t == 0], 0.8 * plain[t == 0])


@pytest.mark.parametrize("gamma", [0.3, 2.0])
def test_binary_gradcheck(gamma):
    x = torch.randn(12, dtype=torch.float64, requires_grad=True)
    t = torch.rand(12, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: mlh.binary_focal_loss(z, t, alpha=0.3, gamma=gamma), (x,)
    )


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("scale", [100.0, 1e4])
def test_binary_extreme_logits_stay_finite(gamma, scale):
    x = torch.tensor([scale, -scale, scale, -scale, 0.0], requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5])
    loss = mlh.binary_focal_loss(x, t, gamma=gamma)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_naive_form_is_nan_where_ours_is_not():
    x = torch.tensor([100.0], requires_grad=True)
    _torchvision_form(x, torch.tensor([1.0]), 0.25, 0.5).sum().backward()
    assert torch.isnan(x.grad).all()
    x.grad = None
    mlh.binary_focal_loss(x, torch.tensor([1.0]), gamma=0.5).backward()
    assert torch.isfinite(x.grad).all()


def test_binary_module_equals_function():
    x, t = torch.randn(10), (torch.rand(10) < 0.5).float()
    module = mlh.BinaryFocalLoss(alpha=0.4, gamma=1.0, reduction="sum")
    assert repr(module) == "BinaryFocalLoss(alpha=0.4, gamma=1.0, reduction='sum')"
    torch.testing.assert_close(
        module(x, t), mlh.binary_focal_loss(x, t, alpha=0.4, gamma=1.0, reduction="sum")
    )


@pytest.mark.parametrize(
    ("kwargs", "target", "error", "match"),
    [
        ({"alpha": 1.5}, None, ValueError, "`alpha` must be <= 1"),
        ({"alpha": -0.1}, None, ValueError, "`alpha` must be >= 0"),
        ({"gamma": -0.5}, None, ValueError, "`gamma` must be >= 0"),
        ({"reduction": "batchmean"}, None, ValueError, "`reduction` must be one of"),
        ({}, torch.ones(3), ValueError, r"`target` must have the input's shape \(4,\)"),
        ({}, torch.tensor([0.0, 2.0, 1.0, 0.0]), ValueError, r"must lie in \[0, 1\]"),
    ],
)
def test_binary_bad_inputs(kwargs, target, error, match):
    target = torch.tensor([0.0, 1.0, 1.0, 0.0]) if target is None else target
    with pytest.raises(error, match=match):
        mlh.binary_focal_loss(torch.randn(4), target, **kwargs)
