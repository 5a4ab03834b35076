"""Focal losses: identities, the alpha_t ratio, first and second derivatives, low precision,
ignored rows, devices, extreme logits, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers.devices import device_fixture, no_host_sync  # noqa: F401  (the `device` fixture)

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


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("target", [0.0, 1.0])
def test_binary_well_classified_elements_keep_their_digits(target, gamma):
    # Confident, correct predictions have tiny losses. In float32 they must keep their
    # relative precision: a form such as (1 - t) x - logsigmoid(x) cancels for t = 0 and
    # very negative x, and lost 0.4 % of the value at x = -9.
    sign = 1.0 if target == 1.0 else -1.0
    x = (sign * torch.linspace(4.0, 14.0, 201)).requires_grad_()
    t = torch.full_like(x, target)
    ours = mlh.binary_focal_loss(x, t, alpha=0.25, gamma=gamma, reduction="none")
    xd = x.detach().double().requires_grad_()
    ref = _torchvision_form(xd, t.double(), 0.25, gamma)  # no cancellation in float64 here
    torch.testing.assert_close(ours.double(), ref.detach(), rtol=1e-5, atol=0)
    (grad,) = torch.autograd.grad(ours.sum(), x)
    (grad_ref,) = torch.autograd.grad(ref.sum(), xd)
    torch.testing.assert_close(grad.double(), grad_ref, rtol=1e-5, atol=0)


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
    assert "__repr__" not in type(module).__dict__  # extra_repr, as PyTorch's modules
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
        ({}, torch.zeros(4, dtype=torch.complex64), TypeError, "must hold real values"),
    ],
)
def test_binary_bad_inputs(kwargs, target, error, match):
    target = torch.tensor([0.0, 1.0, 1.0, 0.0]) if target is None else target
    with pytest.raises(error, match=match):
        mlh.binary_focal_loss(torch.randn(4), target, **kwargs)


# ----------------------------------------------------------------- reprs rebuild the module
@pytest.mark.parametrize(
    "module",
    [
        mlh.FocalLoss(gamma=1.5, weight=torch.tensor([1.0, 4.0]), ignore_index=3, reduction="sum"),
        mlh.FocalLoss(),
        mlh.BinaryFocalLoss(alpha=None, gamma=0.5, reduction="none"),
    ],
)
def test_repr_rebuilds_the_module(module):
    namespace = {"FocalLoss": mlh.FocalLoss, "BinaryFocalLoss": mlh.BinaryFocalLoss}
    rebuilt = eval(repr(module), {**namespace, "tensor": torch.tensor})
    assert repr(rebuilt) == repr(module)
    assert "__repr__" not in type(module).__dict__


# ----------------------------------------------------------------- second derivatives
def _reference_focal(x, t, gamma, weight=None, ignore_index=-100, reduction="mean"):
    """Straightforward multi-class focal loss, differentiated by autograd (moderate logits)."""
    valid = t != ignore_index
    safe = torch.where(valid, t, 0)
    log_p = torch.log_softmax(x, 1).gather(1, safe.unsqueeze(1)).squeeze(1)
    w = valid.to(x.dtype) if weight is None else weight[safe] * valid
    loss = -((1 - log_p.exp()) ** gamma) * log_p * w
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / w.sum()


@pytest.mark.parametrize("num_classes", [5, 300])  # both sides of _LOG_SOFTMAX_FROM
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_multiclass_gradient_matches_the_reference(num_classes, gamma):
    import multiloss_helpers._focal_kernels as losses

    assert 5 < losses._LOG_SOFTMAX_FROM <= 300
    gen = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(40, num_classes, generator=gen, dtype=torch.float64)).requires_grad_()
    t = torch.randint(num_classes, (40,), generator=gen)
    t[3] = -100
    weight = torch.rand(num_classes, generator=gen, dtype=torch.float64) + 0.5
    ours = mlh.focal_loss(x, t, gamma=gamma, weight=weight, ignore_index=-100)
    ref = _reference_focal(x, t, gamma, weight=weight)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x)[0], torch.autograd.grad(ref, x)[0])


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_multiclass_gradgradcheck(gamma, reduction, weighted, ignore):
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 1, 2, 1, 0])
    if ignore:
        t[1] = -100
    if weighted:  # a learnable class weight: its gradient is checked too
        w = (torch.rand(3, dtype=torch.float64) + 0.1).requires_grad_()

        def fn(x, w):
            return mlh.focal_loss(x, t, gamma=gamma, weight=w, reduction=reduction)

        inputs = (x, w)
    else:

        def fn(x):
            return mlh.focal_loss(x, t, gamma=gamma, reduction=reduction)

        inputs = (x,)
    assert torch.autograd.gradcheck(fn, inputs)
    assert torch.autograd.gradgradcheck(fn, inputs)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_gradgradcheck_with_soft_target_requiring_grad(gamma, alpha, reduction):
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    t = torch.rand(6, dtype=torch.float64, requires_grad=True)

    def fn(x, t):
        return mlh.binary_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)

    assert torch.autograd.gradcheck(fn, (x, t))
    assert torch.autograd.gradgradcheck(fn, (x, t))
    x_only = (x,)
    assert torch.autograd.gradgradcheck(lambda z: fn(z, t.detach()), x_only)


def _gradient_penalty(loss_fn, seed=0):
    """d/dtheta of ||dL/dx||^2 through a small linear model: a second derivative."""
    gen = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        for p in lin.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(8, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(loss_fn(lin(x)), x, create_graph=True)
    return torch.autograd.grad(g.pow(2).sum(), list(lin.parameters()))


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_gradient_penalty_matches_the_reference_multiclass(gamma):
    t = torch.tensor([0, 1, 2, 0, 1, 2, 0, -100])
    w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    ours = _gradient_penalty(lambda z: mlh.focal_loss(z, t, gamma=gamma, weight=w))
    ref = _gradient_penalty(lambda z: _reference_focal(z, t, gamma, weight=w))
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_gradient_penalty_matches_the_reference_binary(gamma):
    t = torch.tensor([[1.0, 0.0, 0.3]] * 8, dtype=torch.float64)
    ours = _gradient_penalty(lambda z: mlh.binary_focal_loss(z, t, gamma=gamma))
    ref = _gradient_penalty(lambda z: _torchvision_form(z, t, 0.25, gamma).mean())
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_learnable_weight_gets_the_reference_gradient(gamma, reduction):
    x = 2 * torch.randn(12, 4, dtype=torch.float64)
    t = torch.randint(4, (12,))
    t[0] = -100
    w1 = (torch.rand(4, dtype=torch.float64) + 0.5).requires_grad_()
    w2 = w1.detach().clone().requires_grad_()
    ours = mlh.focal_loss(x, t, gamma=gamma, weight=w1, reduction=reduction).sum()
    ref = _reference_focal(x, t, gamma, weight=w2, reduction=reduction).sum()
    torch.testing.assert_close(ours, ref)
    (g_ours,) = torch.autograd.grad(ours, w1)
    (g_ref,) = torch.autograd.grad(ref, w2)
    torch.testing.assert_close(g_ours, g_ref)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_soft_target_requiring_grad_gets_the_reference_gradient(gamma, alpha):
    x = 2 * torch.randn(20, dtype=torch.float64)
    t1 = torch.rand(20, dtype=torch.float64).requires_grad_()
    t2 = t1.detach().clone().requires_grad_()
    ours = mlh.binary_focal_loss(x, t1, alpha=alpha, gamma=gamma)
    ref = _torchvision_form(x, t2, alpha, gamma).mean()
    (g_ours,) = torch.autograd.grad(ours, t1)
    (g_ref,) = torch.autograd.grad(ref, t2)
    assert g_ours is not None
    torch.testing.assert_close(g_ours, g_ref)


def test_second_backward_through_a_retained_graph_is_identical():
    x = torch.randn(50, requires_grad=True)
    loss = mlh.binary_focal_loss(x, (torch.rand(50) < 0.5).float())
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    (second,) = torch.autograd.grad(loss, x)
    assert torch.equal(first, second)


# ----------------------------------------------------------------- low precision
LOW_TOL = {torch.bfloat16: 2e-2, torch.float16: 2e-3, torch.float32: 1e-5, torch.float64: 1e-10}


def _rel_err(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


@pytest.mark.parametrize("dtype", list(LOW_TOL))
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_multiclass_dtype_axis(device, dtype, gamma):
    if device.type == "mps" and dtype == torch.float64:
        pytest.skip("MPS has no float64")
    x = (3 * torch.randn(256, 10)).to(device, dtype).requires_grad_()
    t = torch.randint(10, (256,), device=device)
    t[:5] = -100
    w = torch.rand(10, device=device) + 0.5
    ours = mlh.focal_loss(x, t, gamma=gamma, weight=w.to(dtype))
    assert ours.dtype == dtype
    (g,) = torch.autograd.grad(ours, x)
    assert g.dtype == dtype
    x64 = x.detach().cpu().double().requires_grad_()
    w64 = w.to(dtype).cpu().double()
    ref = _reference_focal(x64, t.cpu(), gamma, weight=w64)
    (g_ref,) = torch.autograd.grad(ref, x64)
    torch.testing.assert_close(ours.double().cpu(), ref, rtol=LOW_TOL[dtype], atol=0)
    # the gradient is as accurate as F.cross_entropy's in the same dtype (rounding only)
    ce = F.cross_entropy(x, t, weight=w.to(dtype))
    (g_ce,) = torch.autograd.grad(ce, x)
    ce_ref = F.cross_entropy(x64, t.cpu(), weight=w64)
    (g_ce_ref,) = torch.autograd.grad(ce_ref, x64)
    assert _rel_err(g.cpu(), g_ref) <= 1.5 * _rel_err(g_ce.cpu(), g_ce_ref) + LOW_TOL[dtype]


@pytest.mark.parametrize("dtype", list(LOW_TOL))
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_binary_dtype_axis(device, dtype, gamma):
    if device.type == "mps" and dtype == torch.float64:
        pytest.skip("MPS has no float64")
    x = (3 * torch.randn(4096)).to(device, dtype).requires_grad_()
    t = (torch.rand(4096, device=device) < 0.3).to(dtype)
    ours = mlh.binary_focal_loss(x, t, gamma=gamma)
    assert ours.dtype == dtype
    (g,) = torch.autograd.grad(ours, x)
    x64 = x.detach().cpu().double().requires_grad_()
    ref = _torchvision_form(x64, t.cpu().double(), 0.25, gamma).mean()
    (g_ref,) = torch.autograd.grad(ref, x64)
    torch.testing.assert_close(ours.double().cpu(), ref, rtol=LOW_TOL[dtype], atol=0)
    bce = F.binary_cross_entropy_with_logits(x, t)
    (g_bce,) = torch.autograd.grad(bce, x)
    bce_ref = F.binary_cross_entropy_with_logits(x64, t.cpu().double())
    (g_bce_ref,) = torch.autograd.grad(bce_ref, x64)
    assert _rel_err(g.cpu(), g_ref) <= 1.5 * _rel_err(g_bce.cpu(), g_bce_ref) + LOW_TOL[dtype]


def test_float16_means_do_not_overflow(device):
    x = torch.full((40960,), -10.0, device=device, dtype=torch.float16)
    t = torch.ones_like(x)  # every element loses about 2.5: the sum is far above 65504
    loss = mlh.binary_focal_loss(x, t)
    assert loss.dtype == torch.float16
    torch.testing.assert_close(loss.float().cpu(), torch.tensor(2.5), rtol=1e-3, atol=0)
    logits = torch.zeros(40960, 4, device=device, dtype=torch.float16)
    logits[:, 0] = -10.0
    target = torch.zeros(40960, dtype=torch.long, device=device)
    target[:100] = -100
    weight = torch.tensor([2.0, 1.0, 1.0, 1.0], device=device, dtype=torch.float16)
    expected = mlh.focal_loss(logits.float(), target, weight=weight.float())
    for kwargs in ({"weight": weight}, {}):
        loss = mlh.focal_loss(logits, target, **kwargs)
        assert torch.isfinite(loss)
        torch.testing.assert_close(loss.float(), expected, rtol=1e-3, atol=0)


def test_autocast_output_dtype_does_not_depend_on_gamma():
    lin = torch.nn.Linear(4, 3)
    x, t = torch.randn(8, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lin(x)
        dtypes = {mlh.focal_loss(logits, t, gamma=g).dtype for g in (0.0, 0.5, 1.0, 2.0)}
        binary = {
            mlh.binary_focal_loss(logits, torch.rand(8, 3), alpha=a, gamma=g).dtype
            for a, g in ((None, 0.0), (0.25, 0.0), (0.25, 2.0))
        }
    assert logits.dtype == torch.bfloat16
    assert dtypes == {torch.bfloat16} and binary == {torch.bfloat16}


# ----------------------------------------------------------------- ignored rows
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_non_finite_logits_in_ignored_rows_change_nothing(device, gamma, reduction, weighted):
    clean = torch.randn(6, 3, device=device)
    t = torch.tensor([0, -100, 2, -100, 1, 0], device=device)
    dirty = clean.clone()
    dirty[1] = float("nan")
    dirty[3] = torch.tensor([float("inf"), -float("inf"), 0.0])
    w = torch.tensor([1.0, 2.0, 0.5], device=device) if weighted else None
    clean.requires_grad_()
    dirty.requires_grad_()
    kwargs = {"gamma": gamma, "weight": w, "reduction": reduction}
    expected = mlh.focal_loss(clean, t, **kwargs)
    got = mlh.focal_loss(dirty, t, **kwargs)
    torch.testing.assert_close(got, expected)
    (g_clean,) = torch.autograd.grad(expected.sum(), clean)
    (g_dirty,) = torch.autograd.grad(got.sum(), dirty)
    torch.testing.assert_close(g_dirty, g_clean)
    assert torch.equal(g_dirty[[1, 3]], torch.zeros(2, 3, device=device))


# ----------------------------------------------------------------- devices and host syncs
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_on_every_device_without_host_sync(device, gamma):
    x = torch.randn(32, 4, device=device, requires_grad=True)
    t = torch.randint(4, (32,), device=device)
    t[0] = -100
    w = torch.rand(4, device=device) + 0.1
    with no_host_sync(device):
        loss = mlh.focal_loss(x, t, gamma=gamma, weight=w)
        loss.backward()
        b = mlh.binary_focal_loss(x, torch.rand(32, 4, device=device), gamma=gamma)
        b.backward()
    expected = _reference_focal(x.detach().cpu().double(), t.cpu(), gamma, weight=w.cpu().double())
    torch.testing.assert_close(loss.cpu().double(), expected, rtol=1e-5, atol=1e-6)
    assert loss.device == x.device and torch.isfinite(x.grad).all()


def test_devices_are_checked_where_tensors_meet():
    x, t = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    meta = torch.device("meta")  # a second device that every machine has
    with pytest.raises(ValueError, match=r"`target` is on meta but `input` is on cpu"):
        mlh.focal_loss(x, t.to(meta))
    with pytest.raises(ValueError, match=r"`weight` is on meta but `input` is on cpu"):
        mlh.focal_loss(x, t, weight=torch.ones(3, device=meta))
    with pytest.raises(ValueError, match=r"`target` is on meta but `input` is on cpu"):
        mlh.binary_focal_loss(x, torch.rand(4, 3, device=meta))


# ----------------------------------------------------------------- weights
@pytest.mark.parametrize(
    ("weight", "match"),
    [
        (torch.tensor([1.0, -0.5, 1.0]), r"`weight` must be non-negative and finite, got -0.5"),
        (torch.tensor([1.0, float("nan"), 1.0]), r"`weight` must be non-negative and finite"),
        (torch.tensor([1.0, float("inf"), 1.0]), r"`weight` must be non-negative and finite"),
    ],
)
def test_negative_or_nan_weight_is_refused(weight, match):
    with pytest.raises(ValueError, match=match):
        mlh.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), weight=weight)
    with pytest.raises(ValueError, match=match):
        mlh.FocalLoss(weight=weight)


def test_integer_weight_is_refused():
    with pytest.raises(TypeError, match="`weight` must be a floating-point tensor"):
        mlh.focal_loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), weight=torch.ones(3).long())


def test_binary_nan_target_is_refused():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        mlh.binary_focal_loss(torch.randn(3), torch.tensor([0.0, float("nan"), 1.0]))


@pytest.mark.parametrize("num_classes", [3, 130])  # both kernels: logsumexp and log_softmax
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_both_multiclass_kernels_match_the_reference(num_classes, gamma):
    x = (3 * torch.randn(6, num_classes, dtype=torch.float64)).requires_grad_()
    t = torch.randint(num_classes, (6,))
    t[2] = -100
    ours = mlh.focal_loss(x, t, gamma=gamma)
    ref = _reference_focal(x, t, gamma)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(
        torch.autograd.grad(ours, x)[0], torch.autograd.grad(ref, x)[0], rtol=1e-7, atol=1e-12
    )
    small = x.detach()[:3].requires_grad_()
    assert torch.autograd.gradgradcheck(lambda z: mlh.focal_loss(z, t[:3], gamma=gamma), (small,))


def test_binary_chunks_add_up(monkeypatch):
    import multiloss_helpers._focal_kernels as losses

    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    t = torch.rand(1000, dtype=torch.float64)
    whole = mlh.binary_focal_loss(x, t, reduction="sum")
    (g_whole,) = torch.autograd.grad(whole, x)
    monkeypatch.setattr(losses, "_CHUNK", 64)  # 16 chunks, the last one partial
    for reduction in REDUCTIONS:
        chunked = mlh.binary_focal_loss(x, t, reduction=reduction)
        expected = _torchvision_form(x, t, 0.25, 2.0)
        expected = {"mean": expected.mean(), "sum": expected.sum(), "none": expected}[reduction]
        torch.testing.assert_close(chunked, expected)
    chunked = mlh.binary_focal_loss(x, t, reduction="sum")
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(torch.autograd.grad(chunked, x)[0], g_whole)


def test_empty_inputs_follow_torch():
    assert torch.isnan(mlh.binary_focal_loss(torch.zeros(0), torch.zeros(0)))
    assert mlh.binary_focal_loss(torch.zeros(0), torch.zeros(0), reduction="sum") == 0
    assert mlh.binary_focal_loss(torch.zeros(0, 3), torch.zeros(0, 3), reduction="none").shape == (
        0,
        3,
    )


# ----------------------------------------------------------------- binary: the hard-target path
@pytest.mark.parametrize("alpha", [None, 0.0, 0.25, 1.0])
@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_hard_targets_match_the_reference(alpha, gamma, reduction):
    gen = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(200, generator=gen, dtype=torch.float64)).requires_grad_()
    t = (torch.rand(200, generator=gen) < 0.3).double()  # every chunk hard: the fast path
    ours = mlh.binary_focal_loss(x, t, alpha=alpha, gamma=gamma, reduction=reduction)
    ref = _torchvision_form(x, t, alpha, gamma)
    ref = {"mean": ref.mean(), "sum": ref.sum(), "none": ref}[reduction]
    torch.testing.assert_close(ours, ref)
    grad_out = torch.rand_like(ours)  # not 1: the incoming gradient is applied
    torch.testing.assert_close(
        torch.autograd.grad(ours, x, grad_out)[0], torch.autograd.grad(ref, x, grad_out)[0]
    )


def test_binary_bool_targets_equal_float_targets():
    x = torch.randn(3, 50, requires_grad=True)
    t = torch.rand(3, 50) < 0.4
    for alpha, gamma in [(0.25, 2.0), (None, 0.0), (None, 0.5)]:
        from_bool = mlh.binary_focal_loss(x, t, alpha=alpha, gamma=gamma)
        from_float = mlh.binary_focal_loss(x, t.float(), alpha=alpha, gamma=gamma)
        torch.testing.assert_close(from_bool, from_float)
        torch.testing.assert_close(
            torch.autograd.grad(from_bool, x)[0], torch.autograd.grad(from_float, x)[0]
        )


def test_binary_chunks_take_the_path_their_targets_allow(monkeypatch):
    import multiloss_helpers._focal_kernels as losses

    calls = {"hard": 0, "soft": 0}
    hard, soft = losses._binary_chunk_hard, losses._binary_chunk

    def count(name, kernel):
        def counted(*args):
            calls[name] += 1
            return kernel(*args)

        return counted

    monkeypatch.setattr(losses, "_binary_chunk_hard", count("hard", hard))
    monkeypatch.setattr(losses, "_binary_chunk", count("soft", soft))
    monkeypatch.setattr(losses, "_CHUNK", 64)
    x = torch.randn(320, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(320) < 0.5).double()
    t[200] = 0.7  # the fourth chunk of five is soft; after it, no chunk is probed
    ours = mlh.binary_focal_loss(x, t, reduction="sum")
    assert calls == {"hard": 3, "soft": 2}
    ref = _torchvision_form(x, t, 0.25, 2.0).sum()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x)[0], torch.autograd.grad(ref, x)[0])


@pytest.mark.parametrize("bad", [2.0, -0.5, -1e-30, float("nan")])
@pytest.mark.parametrize("soft_before", [False, True])
def test_binary_a_bad_target_in_a_later_chunk_is_refused(monkeypatch, bad, soft_before):
    import multiloss_helpers._focal_kernels as losses

    monkeypatch.setattr(losses, "_CHUNK", 64)
    t = (torch.rand(300) < 0.5).float()
    if soft_before:  # later chunks are then only range-checked
        t[10] = 0.3
    t[290] = bad
    with pytest.raises(ValueError, match=r"`target` values must lie in \[0, 1\], got values"):
        mlh.binary_focal_loss(torch.randn(300, requires_grad=True), t)


@pytest.mark.parametrize("gamma", [0.0, 0.3, 1.0, 2.0])
@pytest.mark.parametrize("scale", [100.0, 1e4])
def test_binary_hard_path_extreme_logits_stay_finite(gamma, scale):
    x = torch.tensor([scale, -scale, scale, -scale, 0.0], requires_grad=True)
    t = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])  # all hard: the fast path
    loss = mlh.binary_focal_loss(x, t, gamma=gamma)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    assert x.grad[0] == 0 and x.grad[1] == 0  # certain and right: no gradient


# --------------------------------------------------------------------------------------------
# The chunked binary kernels: regressions for precision and second derivatives that the
# identities above do not reach (found by a review of the fused binary focal kernels).
# --------------------------------------------------------------------------------------------


def _grad_hard_float64(x: torch.Tensor, t: torch.Tensor, alpha, gamma: float) -> torch.Tensor:
    """dL/dx for targets in {0, 1}, in float64, as a sum of non-negative products."""
    x, t = x.double(), t.double()
    z = (2 * t - 1) * x
    q, p = torch.sigmoid(-z), torch.sigmoid(z)
    ce = torch.relu(-z) + torch.log1p(torch.exp(-z.abs()))
    b = (1 - 2 * t) if alpha is None else ((1 - alpha) - t)
    return b * q.pow(gamma) * (gamma * p * ce + q)


# The reduction keeps float32's precision.
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


# The differentiable route keeps the small cross-entropy of well-classified negatives.
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


# Second derivatives of confident elements are finite.
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


# The mean does not fold 1 / numel into tiny per-element weights.
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


# No gradient is formed without autograd.
@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_forward_without_autograd_forms_no_gradient(monkeypatch, context):
    import multiloss_helpers._focal_kernels as losses

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


# NaN targets are named as NaN, not as a range.


@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (None, 0.0), (None, 0.5)])
def test_one_nan_target_is_named(alpha, gamma):
    target = torch.tensor([0.0, float("nan"), 1.0])
    with pytest.raises(ValueError, match=r"NaN: 1 of 3, the first at flat index 1") as info:
        mlh.binary_focal_loss(torch.randn(3), target, alpha=alpha, gamma=gamma)
    assert "nan to nan" not in str(info.value)


def test_nan_in_a_later_chunk_is_counted_over_the_whole_target(monkeypatch):
    import multiloss_helpers._focal_kernels as kernels

    monkeypatch.setattr(kernels, "_CHUNK", 64)
    target = (torch.rand(300) < 0.5).float()
    target[[10, 250, 290]] = float("nan")
    with pytest.raises(ValueError, match=r"NaN: 3 of 300, the first at flat index 10"):
        mlh.binary_focal_loss(torch.randn(300, requires_grad=True), target)


def test_a_value_out_of_range_still_gives_the_range():
    with pytest.raises(ValueError, match=r"got values from -0.5 to 2.0"):
        mlh.binary_focal_loss(torch.randn(3), torch.tensor([-0.5, 0.3, 2.0]))
