"""gaussian_kl and distillation_loss: references, special cases, gradients, dtypes, errors."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence

import multiloss_helpers as mlh
from multiloss_helpers.composite import _half_exp_minus_one_minus

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
TOL = {
    torch.float32: {"rtol": 1e-5, "atol": 1e-5},
    torch.float64: {"rtol": 1e-10, "atol": 1e-10},
    torch.bfloat16: {"rtol": 2e-2, "atol": 2e-2},
    torch.float16: {"rtol": 2e-3, "atol": 2e-3},
}


def _reference_kl(mu, logvar):
    """One KL per sample from torch.distributions, in float64."""
    mu, logvar = mu.double(), logvar.double()
    dims = mu.dim() - 1
    q = Independent(Normal(mu, (0.5 * logvar).exp()), dims)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), dims)
    return kl_divergence(q, p)


# ------------------------------------------------------------------ gaussian_kl
@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4)])
def test_gaussian_kl_matches_torch_distributions(shape):
    mu, logvar = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    want = _reference_kl(mu, logvar)
    torch.testing.assert_close(mlh.gaussian_kl(mu, logvar, reduction="none"), want)
    torch.testing.assert_close(mlh.gaussian_kl(mu, logvar, reduction="sum"), want.sum())
    torch.testing.assert_close(mlh.gaussian_kl(mu, logvar), want.mean())


def test_gaussian_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(3, 4)
    assert torch.equal(mlh.gaussian_kl(zeros, zeros, reduction="none"), torch.zeros(3))
    mu, logvar = torch.randn(50, 4), torch.randn(50, 4)
    assert bool((mlh.gaussian_kl(mu, logvar, reduction="none") > 0).all())


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_kl_dtypes(dtype, device):
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    want = _reference_kl(mu.to(dtype), logvar.to(dtype))
    for reduction, ref in (("none", want), ("mean", want.mean()), ("sum", want.sum())):
        got = mlh.gaussian_kl(mu.to(device, dtype), logvar.to(device, dtype), reduction=reduction)
        assert got.dtype == dtype and got.device.type == device.type
        torch.testing.assert_close(got.cpu().double(), ref, **TOL[dtype])


def test_gaussian_kl_is_accurate_near_zero_logvar():
    logvar = torch.tensor([[1e-4, -1e-4, 1e-6]])
    want = _reference_kl(torch.zeros(1, 3), logvar)
    got = mlh.gaussian_kl(torch.zeros(1, 3), logvar, reduction="none")
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=0.0)


@pytest.mark.parametrize("value", [-1e4, -100.0, 50.0, 80.0])
def test_gaussian_kl_finite_for_large_logvar(value):
    mu = torch.zeros(2, 3)
    logvar = torch.full((2, 3), value, requires_grad=True)
    loss = mlh.gaussian_kl(mu, logvar)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(logvar.grad).all())
    v = torch.tensor(value, dtype=torch.float64)  # the closed form: scale exp(-5000) is 0
    want = 3 * 0.5 * (torch.exp(v) - 1 - v)
    torch.testing.assert_close(loss.double(), want, rtol=1e-5, atol=0.0)


def test_gaussian_kl_gradcheck():
    mu = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    for reduction in ("mean", "sum", "none"):
        fn = lambda m, v, r=reduction: mlh.gaussian_kl(m, v, reduction=r)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (mu, logvar))
        assert torch.autograd.gradgradcheck(fn, (mu, logvar))


@pytest.mark.parametrize(
    ("mu", "logvar", "kwargs", "error", "match"),
    [
        ([0.0], torch.zeros(1), {}, TypeError, "`mu` must be a tensor"),
        (torch.zeros(2), None, {}, TypeError, "`logvar` must be a tensor"),
        (torch.zeros(2, dtype=torch.long), torch.zeros(2), {}, TypeError, "`mu` must be a float"),
        (torch.zeros(2), torch.zeros(2, dtype=torch.int32), {}, TypeError, "`logvar` must be"),
        (torch.zeros(()), torch.zeros(()), {}, ValueError, "batch dimension"),
        (torch.zeros(2, 3), torch.zeros(2, 4), {}, ValueError, "the same shape"),
        (torch.zeros(2), torch.zeros(2, dtype=torch.float64), {}, TypeError, "the same dtype"),
        (torch.zeros(2), torch.zeros(2), {"reduction": "batchmean"}, ValueError, "`reduction`"),
    ],
)
def test_gaussian_kl_bad_inputs(mu, logvar, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.gaussian_kl(mu, logvar, **kwargs)


@pytest.mark.parametrize("shape", [(0, 3), (0,), (0, 2, 4)])
def test_gaussian_kl_empty_batch(shape):
    # an empty (0, K) batch raised torch's "cannot reshape tensor of 0 elements"
    empty = torch.zeros(shape)
    assert mlh.gaussian_kl(empty, empty, reduction="none").shape == (0,)
    assert torch.equal(mlh.gaussian_kl(empty, empty, reduction="sum"), torch.tensor(0.0))
    assert torch.isnan(mlh.gaussian_kl(empty, empty))  # the mean of nothing, as torch's


def test_gaussian_kl_device_mismatch_names_both():
    if not torch.cuda.is_available():
        pytest.skip("needs a second device")
    with pytest.raises(ValueError, match="one device, got cpu and cuda"):
        mlh.gaussian_kl(torch.zeros(2), torch.zeros(2, device="cuda"))


# ------------------------------------------------------------------ distillation_loss
def _logits(n=8, c=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    s = 2 * torch.randn(n, c, generator=g, dtype=torch.float64)
    t = 3 * torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.randint(c, (n,), generator=g)
    return s.to(dtype), t.to(dtype), y


def _reference_distillation(s, t, y, temperature, alpha):
    s, t = s.double(), t.double()
    p_t = F.softmax(t / temperature, dim=1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / temperature, dim=1))).sum(1).mean()
    return alpha * temperature**2 * kl + (1 - alpha) * F.cross_entropy(s, y)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_distillation_matches_the_formula(temperature, alpha):
    s, t, y = _logits(dtype=torch.float64)
    got = mlh.distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
    torch.testing.assert_close(got, _reference_distillation(s, t, y, temperature, alpha))


def test_alpha_zero_is_cross_entropy_exactly():
    s, t, y = _logits()
    s.requires_grad_(True)
    got = mlh.distillation_loss(s, t, y, temperature=3.0, alpha=0.0)
    want = F.cross_entropy(s, y)
    assert torch.equal(got, want)
    (g1,) = torch.autograd.grad(got, s)
    (g2,) = torch.autograd.grad(want, s)
    assert torch.equal(g1, g2)


def test_alpha_one_with_identical_logits_is_zero():
    s, _, y = _logits()
    s.requires_grad_(True)
    loss = mlh.distillation_loss(s, s.detach().clone(), y, temperature=4.0, alpha=1.0)
    torch.testing.assert_close(loss, torch.tensor(0.0), atol=1e-6, rtol=0.0)
    (grad,) = torch.autograd.grad(loss, s)
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-6, rtol=0.0)


def test_teacher_receives_no_gradient():
    s, t, y = _logits()
    s.requires_grad_(True)
    teacher_net = torch.nn.Linear(5, 5)
    teacher = teacher_net(t)
    assert teacher.requires_grad
    mlh.distillation_loss(s, teacher, y, alpha=0.7).backward()
    assert s.grad is not None
    assert all(p.grad is None for p in teacher_net.parameters())
    leaf = t.clone().requires_grad_(True)
    mlh.distillation_loss(s, leaf, y, alpha=1.0).backward()
    assert leaf.grad is None


def _soft_grad_norm(s, t, temperature, scaled):
    s = s.clone().requires_grad_(True)
    soft = mlh.distillation_loss(s, t, torch.zeros(len(s), dtype=torch.long),
                                 temperature=temperature, alpha=1.0)  # fmt: skip
    if not scaled:
        soft = soft / temperature**2
    (grad,) = torch.autograd.grad(soft, s)
    return float(grad.norm())


def test_t_squared_keeps_the_soft_gradient_scale():
    s, t, _ = _logits(n=64, c=10, dtype=torch.float64)
    temperatures = [4.0, 8.0, 16.0, 32.0]
    raw = [_soft_grad_norm(s, t, temp, scaled=False) for temp in temperatures]
    scaled = [_soft_grad_norm(s, t, temp, scaled=True) for temp in temperatures]
    for temp, r in zip(temperatures[1:], raw[1:]):  # about 1/T**2 without the factor
        assert r * temp**2 == pytest.approx(raw[0] * temperatures[0] ** 2, rel=0.1)
    assert max(scaled) / min(scaled) < 1.1  # about constant with it
    assert raw[0] / raw[-1] > 50


def test_gradcheck_distillation():
    s, t, y = _logits(n=3, c=4, dtype=torch.float64)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x: mlh.distillation_loss(x, t, y, temperature=2.5, alpha=0.4), (s,)
    )
    assert torch.autograd.gradgradcheck(
        lambda x: mlh.distillation_loss(x, t, y, temperature=2.5, alpha=0.4), (s,)
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_distillation_dtypes(dtype, device):
    s, t, y = _logits(dtype=dtype)
    got = mlh.distillation_loss(s.to(device), t.to(device), y.to(device), temperature=3.0)
    assert got.dtype == dtype and got.device.type == device.type
    want = _reference_distillation(s, t, y, 3.0, 0.5)
    torch.testing.assert_close(got.cpu().double(), want, **TOL[dtype])


def test_distillation_is_finite_for_large_logits():
    s = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], requires_grad=True)
    t = torch.tensor([[-1e4, 1e4, 0.0], [1e4, -1e4, 0.0]])
    loss = mlh.distillation_loss(s, t, torch.tensor([0, 1]), temperature=1.0)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(s.grad).all())


def test_module_matches_function_and_repr():
    s, t, y = _logits()
    criterion = mlh.DistillationLoss(temperature=3.0, alpha=0.2)
    assert repr(criterion) == "DistillationLoss(temperature=3.0, alpha=0.2)"
    want = mlh.distillation_loss(s, t, y, temperature=3.0, alpha=0.2)
    assert torch.equal(criterion(s, t, y), want)
    with pytest.raises(ValueError, match=r"`temperature` must be >= 0\.0001"):
        mlh.DistillationLoss(temperature=0.0)
    with pytest.raises(ValueError, match="`temperature` must be <= 10000"):
        mlh.DistillationLoss(temperature=1e30)


S, T, Y = _logits(n=4, c=3)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((S.tolist(), T, Y), {}, TypeError, "`student_logits` must be a tensor"),
        ((S, T.long(), Y), {}, TypeError, "`teacher_logits` must be a floating"),
        ((S[0], T[0], Y), {}, ValueError, r"shape \(N, C\)"),
        ((S, T[:, :2], Y), {}, ValueError, "the same shape"),
        ((S, T.double(), Y), {}, TypeError, "the same dtype"),
        ((S, T, Y.float()), {}, TypeError, "`target` must hold integer class labels"),
        ((S, T, Y[:3]), {}, ValueError, r"`target` must have shape \(4,\)"),
        ((S, T, Y + 3), {}, ValueError, r"class index \d, outside \[0, 3\)"),
        ((S, T, Y), {"temperature": 0.0}, ValueError, r"`temperature` must be >= 0\.0001"),
        # 1e-40 gave NaN (logits / T overflows), 1e20 NaN (T**2 overflows)
        ((S, T, Y), {"temperature": 1e-40}, ValueError, r"`temperature` must be >= 0\.0001"),
        ((S, T, Y), {"temperature": 1e20}, ValueError, "`temperature` must be <= 10000"),
        ((S, T, Y), {"temperature": "2"}, TypeError, "`temperature` must be a real number"),
        ((S, T, Y), {"alpha": 1.5}, ValueError, "`alpha` must be <= 1"),
        ((S, T, Y), {"alpha": -0.1}, ValueError, "`alpha` must be >= 0"),
    ],
)
def test_distillation_bad_inputs(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.distillation_loss(*args, **kwargs)


def test_distillation_device_mismatch_names_both():
    if not torch.cuda.is_available():
        pytest.skip("needs a second device")
    with pytest.raises(ValueError, match="one device, got cpu and cuda"):
        mlh.distillation_loss(S, T.cuda(), Y)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.uint8])
def test_distillation_accepts_every_integer_target_dtype(dtype):
    # int32 targets raised torch's "expected target dtype to be Long or Byte"
    s, t, y = _logits()
    want = mlh.distillation_loss(s, t, y, temperature=2.0, alpha=0.3)
    assert torch.equal(mlh.distillation_loss(s, t, y.to(dtype), temperature=2.0, alpha=0.3), want)


@pytest.mark.parametrize("scale", [0.01, 1.0, 1000.0])
@pytest.mark.parametrize("temperature", [1e-4, 1.0, 20.0, 100.0, 1e4])
def test_distillation_keeps_float32_precision(scale, temperature):
    if scale / temperature < 1e-5:
        pytest.skip("the float64 reference itself keeps no 1e-5 precision there")
    # the difference of two log-softmaxes was 133 % off for logits of scale 0.01 at T = 100,
    # 17 % off for logits of scale 3 at T = 1e4, and negative at T = 1e5
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(64, 10, generator=g) * scale, torch.randn(64, 10, generator=g) * scale
    y = torch.zeros(64, dtype=torch.long)
    got = mlh.distillation_loss(s, t, y, temperature=temperature, alpha=1.0)
    p_t = F.softmax(t.double() / temperature, dim=1)
    log_ratio = F.log_softmax(t.double() / temperature, 1) - F.log_softmax(
        s.double() / temperature, 1
    )
    kl = (p_t * log_ratio).sum(1).mean()
    torch.testing.assert_close(got.double(), temperature**2 * kl, rtol=1e-5, atol=0.0)


def test_distillation_is_zero_for_logits_that_differ_by_a_constant():
    s, _, y = _logits()
    soft = mlh.distillation_loss(s, s + 5.0, y, temperature=2.0, alpha=1.0)
    assert abs(float(soft)) < 1e-6  # the same softmax: the KL is 0


INF = float("inf")


def _kl_reference(student, teacher, temperature):
    """sum_j p_j (log p_j - log q_j) in float64, with 0 log 0 = 0, mean over rows."""
    s, t = student.double() / temperature, teacher.double() / temperature
    log_q, log_p = F.log_softmax(s, dim=1), F.log_softmax(t, dim=1)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - torch.where(p > 0, log_q, 0.0)), 0.0)
    return temperature**2 * terms.sum(dim=1).mean()


# Issue 20 regression: distillation_loss with -inf masks, near-maximum logits, reductions (D2)
def test_distillation_loss_with_a_masked_teacher_class_is_the_kl_div_value():
    student = torch.tensor([[0.5, 1.0, -0.3, 2.0]], requires_grad=True)
    teacher = torch.tensor([[1.0, -INF, 0.0, 0.7]])
    loss = mlh.distillation_loss(student, teacher, torch.tensor([0]), alpha=1.0, temperature=1.0)
    recipe = F.kl_div(
        F.log_softmax(student, dim=1), F.softmax(teacher, dim=1), reduction="batchmean"
    )
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, recipe)
    loss.backward()
    expected = F.softmax(student.detach(), dim=1) - F.softmax(teacher, dim=1)
    torch.testing.assert_close(student.grad, expected)


# Issue 20 regression: distillation_loss with -inf masks, near-maximum logits, reductions (D2)
def test_distillation_loss_with_both_logits_masked_in_one_class_ignores_it():
    student = torch.tensor([[0.5, -INF, 2.0], [1.0, 0.0, -1.0]], requires_grad=True)
    teacher = torch.tensor([[1.0, -INF, 0.0], [0.0, 0.5, 0.0]])
    target = torch.tensor([2, 0])
    loss = mlh.distillation_loss(student, teacher, target, alpha=1.0, temperature=2.0)
    torch.testing.assert_close(loss.double(), _kl_reference(student.detach(), teacher, 2.0))
    loss.backward()
    assert torch.isfinite(student.grad).all()
    assert student.grad[0, 1] == 0.0


# Issue 20 regression: distillation_loss with -inf masks, near-maximum logits, reductions (D2)
def test_distillation_loss_gradient_is_finite_near_the_float32_maximum():
    student = torch.tensor([[3e38, 0.0]], requires_grad=True)
    teacher = torch.tensor([[-3e38, 0.0]])
    loss = mlh.distillation_loss(student, teacher, torch.tensor([0]), alpha=1.0, temperature=1.0)
    assert loss.item() == pytest.approx(3e38, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(student.grad, torch.tensor([[1.0, -1.0]]))


# Issue 20 regression: distillation_loss with -inf masks, near-maximum logits, reductions (D2)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_distillation_loss_reductions(reduction, alpha):
    gen = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    target = torch.tensor([0, 3, 1, 1, 2])
    per_sample = mlh.distillation_loss(
        student, teacher, target, alpha=alpha, temperature=3.0, reduction="none"
    )
    assert per_sample.shape == (5,)
    for i in range(5):  # "none": the loss of each sample alone
        alone = mlh.distillation_loss(
            student[i : i + 1], teacher[i : i + 1], target[i : i + 1], alpha=alpha,
            temperature=3.0,
        )  # fmt: skip
        torch.testing.assert_close(per_sample[i], alone)
    out = mlh.distillation_loss(
        student, teacher, target, alpha=alpha, temperature=3.0, reduction=reduction
    )
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}
    torch.testing.assert_close(out, expected[reduction])
    if alpha == 0.0:  # exactly cross-entropy with the same reduction
        assert torch.equal(out, F.cross_entropy(student, target, reduction=reduction))
    module = mlh.DistillationLoss(alpha=alpha, temperature=3.0, reduction=reduction)
    torch.testing.assert_close(module(student, teacher, target), out)


# Issue 20 regression: distillation_loss with -inf masks, near-maximum logits, reductions (D2)
def test_distillation_loss_refuses_a_bad_reduction():
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        mlh.distillation_loss(
            torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), reduction="batchmean"
        )


def _half_exp_mp(v: float) -> float:
    mpmath.mp.dps = 50
    x = mpmath.mpf(v)
    return float((mpmath.exp(x) - 1 - x) / 2)


def _ulp_error(got: float, want: float, dtype: torch.dtype) -> float:
    spacing = np.spacing(np.array(abs(want), dtype=np.float32 if dtype == torch.float32 else None))
    return abs(got - want) / float(spacing)


VS = [
    s * m * 10.0**e
    for s in (1, -1)
    for e in (-6, -3, -2, -1, 0, 1)
    for m in (1.0, 1.01, 1.5, 3.3, 7.0)
]


# Issue 20 regression: the (e^v - 1 - v)/2 helper lost ulps near its series cut-off (D8)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_half_exp_minus_one_minus_is_precise_everywhere(dtype):
    v = torch.tensor(VS, dtype=dtype)
    got = _half_exp_minus_one_minus(v).tolist()
    worst = max(_ulp_error(g, _half_exp_mp(float(x)), dtype) for g, x in zip(got, v.tolist()))
    assert worst <= 4.0, worst


# Issue 20 regression: the (e^v - 1 - v)/2 helper lost ulps near its series cut-off (D8)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_half_exp_minus_one_minus_gradient_is_precise(dtype):
    v = torch.tensor(VS, dtype=dtype, requires_grad=True)
    _half_exp_minus_one_minus(v).sum().backward()
    want = torch.expm1(v.detach().double()) / 2
    torch.testing.assert_close(v.grad.double(), want, rtol=8 * torch.finfo(dtype).eps, atol=0)
