"""Regression tests for the package defects of issue 20 (section D), one or more per defect.

Each test failed before its fix; the references are float64 (or mpmath) computations of
the same formula, or PyTorch's own recipe where it is right.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import multiloss_helpers as mlh
from multiloss_helpers.composite import _half_exp_minus_one_minus

INF = float("inf")


# ------------------------------------------------------------------- 1. UncertaintyWeighting
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_uncertainty_weighting_computes_low_precision_losses_in_float32(dtype):
    weighting = mlh.UncertaintyWeighting(3)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.3, -1.2, 2.0]))
    losses = torch.tensor([0.9967, 3.25, 0.0123], dtype=dtype, requires_grad=True)
    total = weighting(losses)
    assert total.dtype == dtype  # the input's dtype out
    total.backward()
    # the reference: float64 on the same (already rounded) loss values
    s = weighting.log_vars.detach().double()
    values = losses.detach().double()
    expected_grad = 0.5 - 0.5 * torch.exp(-s) * values
    torch.testing.assert_close(
        weighting.log_vars.grad.double(), expected_grad, rtol=1e-6, atol=1e-7
    )
    expected_total = (0.5 * torch.exp(-s) * values + 0.5 * s).sum()
    torch.testing.assert_close(total.double(), expected_total.to(dtype).double())


def test_uncertainty_weighting_bfloat16_gradient_is_not_rounded_to_zero():
    weighting = mlh.UncertaintyWeighting(1)
    with torch.no_grad():
        weighting.log_vars.fill_(-0.0032678)  # exp(-s) * L is just above 1
    loss = torch.tensor([0.99609375], dtype=torch.bfloat16, requires_grad=True)
    weighting(loss).backward()
    s = weighting.log_vars.item()  # the float32 value of the parameter
    exact = 0.5 - 0.5 * math.exp(-s) * 0.99609375  # 3.23e-4
    # float32 inside: a few float32 roundings of 0.5 (3e-8 each); bfloat16 was off by 8e-4
    assert weighting.log_vars.grad.item() == pytest.approx(exact, abs=1e-7)
    assert weighting.log_vars.grad.item() != 0.0


# ------------------------------------------------------------------- 2. distillation_loss
def _kl_reference(student, teacher, temperature):
    """sum_j p_j (log p_j - log q_j) in float64, with 0 log 0 = 0, mean over rows."""
    s, t = student.double() / temperature, teacher.double() / temperature
    log_q, log_p = F.log_softmax(s, dim=1), F.log_softmax(t, dim=1)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - torch.where(p > 0, log_q, 0.0)), 0.0)
    return temperature**2 * terms.sum(dim=1).mean()


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


def test_distillation_loss_with_both_logits_masked_in_one_class_ignores_it():
    student = torch.tensor([[0.5, -INF, 2.0], [1.0, 0.0, -1.0]], requires_grad=True)
    teacher = torch.tensor([[1.0, -INF, 0.0], [0.0, 0.5, 0.0]])
    target = torch.tensor([2, 0])
    loss = mlh.distillation_loss(student, teacher, target, alpha=1.0, temperature=2.0)
    torch.testing.assert_close(loss.double(), _kl_reference(student.detach(), teacher, 2.0))
    loss.backward()
    assert torch.isfinite(student.grad).all()
    assert student.grad[0, 1] == 0.0


def test_distillation_loss_gradient_is_finite_near_the_float32_maximum():
    student = torch.tensor([[3e38, 0.0]], requires_grad=True)
    teacher = torch.tensor([[-3e38, 0.0]])
    loss = mlh.distillation_loss(student, teacher, torch.tensor([0]), alpha=1.0, temperature=1.0)
    assert loss.item() == pytest.approx(3e38, rel=1e-6)
    loss.backward()
    torch.testing.assert_close(student.grad, torch.tensor([[1.0, -1.0]]))


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


def test_distillation_loss_refuses_a_bad_reduction():
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        mlh.distillation_loss(
            torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([0]), reduction="batchmean"
        )


# ------------------------------------------------------------------- 3. predictive_entropy
def _entropy_mp(row):
    """The entropy of softmax(row) and its gradient, in 60-digit arithmetic."""
    mpmath.mp.dps = 60
    z = [mpmath.mpf(float(v)) if math.isfinite(v) else None for v in row]
    finite = [v for v in z if v is not None]
    norm = mpmath.fsum(mpmath.exp(v) for v in finite)
    p = [mpmath.exp(v) / norm if v is not None else mpmath.mpf(0) for v in z]
    h = -mpmath.fsum(pi * mpmath.log(pi) for pi in p if pi > 0)
    grad = [-pi * (mpmath.log(pi) + h) if pi > 0 else mpmath.mpf(0) for pi in p]
    return float(h), [float(g) for g in grad]


def test_predictive_entropy_with_a_masked_class_is_finite():
    x = torch.tensor([[-INF, 0.0, 1.0]], requires_grad=True)
    value = mlh.predictive_entropy(x)
    value.backward()
    h, grad = _entropy_mp([-INF, 0.0, 1.0])
    assert value.item() == pytest.approx(0.5822, abs=1e-4)
    assert value.item() == pytest.approx(h, rel=1e-6)
    torch.testing.assert_close(x.grad, torch.tensor([grad]))


@pytest.mark.parametrize(
    "row, dtype, rel",
    [
        ([20.0, 0.0, 0.0], torch.float32, 1e-5),
        ([30.0, 1.0, -2.0, 0.5], torch.float32, 1e-5),
        ([50.0, 0.0, 0.0], torch.float64, 1e-12),
        ([1e3, 999.0, 0.0], torch.float64, 1e-12),
    ],
)
def test_predictive_entropy_keeps_its_precision_for_confident_rows(row, dtype, rel):
    x = torch.tensor([row], dtype=dtype, requires_grad=True)
    value = mlh.predictive_entropy(x)
    value.backward()
    h, grad = _entropy_mp(row)
    assert value.item() == pytest.approx(h, rel=rel)
    for got, want in zip(x.grad[0].tolist(), grad):
        assert got == pytest.approx(want, rel=rel * 10, abs=1e-300)


def test_predictive_entropy_second_derivative_is_right():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mlh.predictive_entropy, (x,))
    assert torch.autograd.gradgradcheck(mlh.predictive_entropy, (x,))
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    entropy = lambda z: mlh.predictive_entropy(z, dim=1, reduction="none")  # noqa: E731
    assert torch.autograd.gradgradcheck(entropy, (x,))


# ------------------------------------------------------------------- 4. fit(seed=) with one loader
def _fit_once(loader, seed):
    net = mlh.MultiHeadNet(4, {"reg": 1}, hidden=(8,), dropout=0.25, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def loss_fn(model, batch):
        return F.mse_loss(model(batch["x"])["reg"], batch["y_reg"])

    history = mlh.fit(net, loss_fn, loader, opt, epochs=2, progress=False, seed=seed)
    return history.steps()


def test_fit_with_a_seed_is_reproducible_when_the_same_loader_is_reused():
    data = mlh.make_multitask_data(96, n_features=4, seed=0)
    loader = mlh.BatchLoader(data, 16, seed=3)
    first = _fit_once(loader, seed=0)
    second = _fit_once(loader, seed=0)
    assert first == second
    # and the same as a fresh loader with the same seed: the loader restarts from its seed
    assert _fit_once(mlh.BatchLoader(data, 16, seed=3), seed=0) == first
    assert _fit_once(loader, seed=1) != first  # the seed does choose the dropout draws


def test_fit_with_a_seed_leaves_the_loader_generator_as_it_was():
    data = mlh.make_multitask_data(64, n_features=4, seed=0)
    loader = mlh.BatchLoader(data, 16, seed=3)
    state = loader.generator.get_state()
    _fit_once(loader, seed=0)
    assert torch.equal(loader.generator.get_state(), state)


def test_fit_with_a_seed_reseeds_a_dataloader_generator_too():
    data = mlh.make_multitask_data(64, n_features=4, seed=0)
    dataset = torch.utils.data.StackDataset(x=data["x"], y_reg=data["y_reg"])
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(5)
    )
    assert _fit_once(loader, seed=0) == _fit_once(loader, seed=0)


@pytest.mark.parametrize("seed", [2**64, -1])
def test_fit_refuses_a_seed_outside_torch_range(seed):
    data = mlh.make_multitask_data(16, n_features=4, seed=0)
    with pytest.raises(ValueError, match="`seed` must be"):
        _fit_once(mlh.BatchLoader(data, 16), seed=seed)


# ------------------------------------------------------------------- 5. unreached shared parameter
@pytest.mark.parametrize("strategy", ["MGDA", "PCGrad"])
def test_surgery_leaves_no_zero_grad_on_a_shared_parameter_no_loss_reaches(strategy):
    trunk, unused = nn.Linear(3, 3), nn.Linear(3, 3)
    heads = nn.Linear(3, 2)
    shared = [*trunk.parameters(), *unused.parameters()]
    weighting = getattr(mlh, strategy)(2, shared=shared)
    out = heads(trunk(torch.randn(8, 3)))
    weighting.backward(torch.stack([out[:, 0].pow(2).mean(), out[:, 1].abs().mean()]))
    assert unused.weight.grad is None and unused.bias.grad is None
    assert trunk.weight.grad is not None
    # so AdamW's decoupled decay leaves the parameter alone, as after plain backward()
    before = unused.weight.detach().clone()
    torch.optim.AdamW(shared, lr=0.1, weight_decay=0.5).step()
    assert torch.equal(unused.weight, before)


# ------------------------------------------------------------------- 6. penalties
@pytest.mark.parametrize("penalty", [mlh.l1_penalty, mlh.l2_penalty])
def test_penalties_refuse_a_tensor_listed_twice(penalty):
    w = torch.randn(2, 2, requires_grad=True)
    with pytest.raises(ValueError, match=r"`params\[1\]` is `params\[0\]` again"):
        penalty([w, w])


@pytest.mark.parametrize("penalty", [mlh.l1_penalty, mlh.l2_penalty])
def test_penalties_skip_frozen_weights_as_weight_decay_groups_does(penalty):
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    net[0].weight.requires_grad_(False)
    decayed = mlh.weight_decay_groups(net, 0.1)[0]["params"]
    assert len(decayed) == 1 and decayed[0] is net[1].weight
    torch.testing.assert_close(penalty(net), penalty([net[1].weight]))
    torch.testing.assert_close(penalty(list(net.parameters())), penalty([net[1].weight]))


def test_penalties_still_count_plain_tensors():
    assert mlh.l2_penalty(torch.ones(2, 2)).item() == 2.0  # not a frozen parameter


# ------------------------------------------------------------------- 8. (e^v - 1 - v) / 2
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_half_exp_minus_one_minus_is_precise_everywhere(dtype):
    v = torch.tensor(VS, dtype=dtype)
    got = _half_exp_minus_one_minus(v).tolist()
    worst = max(_ulp_error(g, _half_exp_mp(float(x)), dtype) for g, x in zip(got, v.tolist()))
    assert worst <= 4.0, worst


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_half_exp_minus_one_minus_gradient_is_precise(dtype):
    v = torch.tensor(VS, dtype=dtype, requires_grad=True)
    _half_exp_minus_one_minus(v).sum().backward()
    want = torch.expm1(v.detach().double()) / 2
    torch.testing.assert_close(v.grad.double(), want, rtol=8 * torch.finfo(dtype).eps, atol=0)


# ------------------------------------------------------------------- 9. LossHistory
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_loss_history_keeps_integer_tensors_exact(dtype):
    history = mlh.LossHistory()
    history.log_step({"count": torch.tensor(16777217, dtype=dtype), "x": 1.5}, epoch=0)
    history.log_step({"count": torch.tensor(3), "x": torch.tensor(0.25)}, epoch=0)
    assert history.steps("count") == [16777217.0, 3.0]
    assert history.steps("x") == [1.5, 0.25]


# ------------------------------------------------------------------- 10. ddp_mean
def test_ddp_mean_with_a_subnormal_denominator():
    out = mlh.ddp_mean(torch.tensor(1e-3), 1e-39)
    assert out.item() == pytest.approx(1e36, rel=1e-6)
    assert mlh.ddp_mean(torch.tensor(0.0), 1e-39).item() == 0.0


def test_ddp_mean_with_a_denominator_beyond_float32():
    out = mlh.ddp_mean(torch.tensor(1e30), 1e39)
    assert out.item() == pytest.approx(1e-9, rel=1e-6)
    loss = torch.tensor(2.0, requires_grad=True)
    mlh.ddp_mean(loss, torch.tensor(4.0)).backward()
    assert loss.grad.item() == 0.25


# ------------------------------------------------------------------- pcgrad
def test_pcgrad_on_gradients_with_a_graph_is_differentiable():
    grads = torch.tensor([[1.0, 0.5, -2.0], [-1.0, 1.0, 0.3]], dtype=torch.float64)
    grads.requires_grad_(True)
    assert torch.autograd.gradcheck(mlh.pcgrad, (grads,))


def test_pcgrad_on_gradients_built_from_parameters_backpropagates():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    out = mlh.pcgrad(torch.stack([w * 2, -w + torch.tensor([0.0, 5.0])]))
    (g,) = torch.autograd.grad(out.sum(), w)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize("bad", [float("nan"), INF])
def test_pcgrad_refuses_non_finite_gradients_as_mgda_does(bad):
    grads = torch.tensor([[1.0, 0.0], [bad, 1.0]])
    with pytest.raises(ValueError, match="`grads` must be finite") as mgda_error:
        mlh.mgda(grads)
    with pytest.raises(ValueError) as pcgrad_error:
        mlh.pcgrad(grads)
    assert str(pcgrad_error.value) == str(mgda_error.value)


# ------------------------------------------------------------------- fit(weighting=) with a NaN
@pytest.mark.parametrize("check_finite", ["step", "epoch"])
def test_fit_with_weighting_names_a_nan_component_and_its_step(check_finite):
    data = mlh.make_multitask_data(64, n_features=4, seed=0)
    net = mlh.MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(8,), seed=0)
    calls = []

    def loss_fn(model, batch):
        out = model(batch["x"])
        calls.append(1)
        reg = F.mse_loss(out["reg"], batch["y_reg"])
        if len(calls) == 3:
            reg = reg * float("nan")
        parts = {"cls": F.cross_entropy(out["cls"], batch["y_cls"]), "reg": reg}
        return torch.tensor(1.0), parts  # a finite total that ignores the parts

    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(
        FloatingPointError, match=r"component 'reg' became nan at step 2 of epoch 0"
    ):
        mlh.fit(net, loss_fn, mlh.BatchLoader(data, 16), opt, epochs=1, progress=False,
                weighting=mlh.EqualWeighting(2), check_finite=check_finite)  # fmt: skip


# ------------------------------------------------------------------- NumPy scalars
@pytest.mark.parametrize("weight", [np.float32(0.5), np.float64(0.5), np.int64(2)])
def test_multitask_loss_takes_numpy_weights(weight):
    loss = mlh.MultiTaskLoss({"a": nn.MSELoss()}, weights={"a": weight})
    out = loss({"a": torch.ones(2)}, {"a": torch.zeros(2)})
    assert out.total.item() == pytest.approx(float(weight))


def test_pcgrad_takes_a_numpy_seed():
    grads = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]])
    torch.testing.assert_close(
        mlh.pcgrad(grads, generator=np.int64(3)), mlh.pcgrad(grads, generator=3)
    )
    assert torch.equal(
        mlh.PCGrad(
            3, shared=[torch.zeros(1, requires_grad=True)], seed=np.uint64(3)
        ).generator.get_state(),
        torch.Generator().manual_seed(3).get_state(),
    )


# ------------------------------------------------------------------- sample_weights shapes
def test_sample_weights_wrong_shapes_are_value_errors():
    with pytest.raises(ValueError, match="`target` must be 1-D"):
        mlh.sample_weights(torch.tensor([[0, 1]]), torch.ones(2))
    with pytest.raises(ValueError, match="`class_weights` must be 1-D"):
        mlh.sample_weights(torch.tensor([0, 1]), torch.ones(2, 1))
    with pytest.raises(TypeError, match="`target` must be"):
        mlh.sample_weights(torch.tensor([0.0, 1.0]), torch.ones(2))


# ------------------------------------------------------------------- GradientReversal in place
def test_gradient_reversal_before_an_in_place_activation():
    x = torch.randn(4, 3, requires_grad=True)
    net = nn.Sequential(mlh.GradientReversal(scale=0.5), nn.ReLU(inplace=True))
    net(x).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * (x.detach() > 0).float())


def test_grad_reverse_returns_a_new_tensor():
    x = torch.randn(3, requires_grad=True)
    y = mlh.grad_reverse(x)
    assert y.data_ptr() != x.data_ptr()
    assert torch.equal(y, x)
