"""L1/L2 penalties, weight-decay groups and the predictive entropy: values, gradients,
dtypes, devices, the SGD equivalence and bad inputs."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import multiloss_helpers as mlh

LOW = (torch.bfloat16, torch.float16)


def _net(device="cpu", dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 3)).to(
        device, dtype
    )


def _weights(net):
    return [p for p in net.parameters() if p.dim() >= 2]


# ------------------------------------------------------------------ values
def test_l2_is_half_the_squared_norm_of_the_weights_only(device):
    net = _net(device)
    want = 0.5 * sum(p.detach().square().sum() for p in _weights(net))
    torch.testing.assert_close(mlh.l2_penalty(net), want)
    every = 0.5 * sum(p.detach().square().sum() for p in net.parameters())
    torch.testing.assert_close(mlh.l2_penalty(net, skip_1d=False), every)


def test_l1_is_the_absolute_sum_of_the_weights_only(device):
    net = _net(device)
    want = sum(p.detach().abs().sum() for p in _weights(net))
    torch.testing.assert_close(mlh.l1_penalty(net), want)
    every = sum(p.detach().abs().sum() for p in net.parameters())
    torch.testing.assert_close(mlh.l1_penalty(net, skip_1d=False), every)


def test_penalties_accept_a_module_a_list_a_dict_and_one_tensor():
    net = _net()
    weight = net[0].weight
    for params in (net, list(net.parameters()), dict(net.named_parameters())):
        torch.testing.assert_close(mlh.l2_penalty(params), mlh.l2_penalty(net))
    torch.testing.assert_close(mlh.l1_penalty(weight), weight.detach().abs().sum())


def test_a_penalty_over_no_weight_is_zero():
    bias = torch.ones(3, requires_grad=True)
    assert float(mlh.l2_penalty([bias])) == 0.0
    assert float(mlh.l1_penalty([bias])) == 0.0


# ------------------------------------------------------------------ gradients
def test_l2_gradient_is_the_weight_and_zero_for_biases():
    net = _net()
    mlh.l2_penalty(net).backward()
    for p in net.parameters():
        if p.dim() >= 2:
            torch.testing.assert_close(p.grad, p.detach())
        else:
            assert p.grad is None


def test_l1_gradient_is_the_sign():
    w = torch.tensor([[1.5, -2.0], [0.0, 0.25]], requires_grad=True)
    mlh.l1_penalty([w]).backward()
    torch.testing.assert_close(w.grad, torch.tensor([[1.0, -1.0], [0.0, 1.0]]))


def test_penalties_gradcheck_in_float64():
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: mlh.l2_penalty([t]), (w,))
    assert torch.autograd.gradcheck(lambda t: mlh.l1_penalty([t]), (w,))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_l2_in_the_loss_equals_sgd_weight_decay_on_the_same_groups(momentum):
    lam, x, y = 0.1, torch.randn(16, 4), torch.randint(3, (16,))
    a, b = _net(), _net()
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1, momentum=momentum)
    opt_b = torch.optim.SGD(mlh.weight_decay_groups(b, lam), lr=0.1, momentum=momentum)
    for _ in range(5):
        for net, opt, extra in ((a, opt_a, lam), (b, opt_b, 0.0)):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            (loss + extra * mlh.l2_penalty(net) if extra else loss).backward()
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *LOW])
@pytest.mark.parametrize("penalty", [mlh.l1_penalty, mlh.l2_penalty])
def test_penalties_return_the_parameters_dtype(dtype, penalty, device):
    net = _net(device, dtype)
    got = penalty(net)
    assert got.dtype == dtype and got.device.type == device.type
    want = penalty(_net(device, torch.float64))
    tol = 1e-2 if dtype in LOW else 1e-5
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)


def test_low_precision_squares_are_summed_in_float32():
    w = torch.full((64, 64), 20.0, dtype=torch.float16)  # 0.5 * 4096 * 400 > float16 max
    assert mlh.l2_penalty([w]).dtype == torch.float16
    assert mlh.l2_penalty([w.float()]) == 819200.0  # the float32 sum is exact


# ------------------------------------------------------------------ groups
def test_weight_decay_groups_split_weights_from_biases_and_norms():
    net = _net()
    decay, rest = mlh.weight_decay_groups(net, 0.5)
    assert decay["weight_decay"] == 0.5 and rest["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(p) for p in _weights(net)}
    assert len(decay["params"]) + len(rest["params"]) == len(list(net.parameters()))
    (every,) = mlh.weight_decay_groups(net, 0.5, skip_1d=False)
    assert len(every["params"]) == len(list(net.parameters()))


def test_weight_decay_groups_leave_frozen_parameters_out():
    net = _net()
    net[0].requires_grad_(False)
    groups = mlh.weight_decay_groups(net, 0.1)
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters())) - 2


# ------------------------------------------------------------------ entropy
def test_entropy_of_uniform_and_certain_predictions(device):
    torch.testing.assert_close(
        mlh.predictive_entropy(torch.zeros(5, 4, device=device)),
        torch.tensor(math.log(4), device=device),
    )
    certain = torch.tensor([[1e4, 0.0, -1e4]], device=device)
    assert float(mlh.predictive_entropy(certain)) == 0.0


def test_entropy_matches_the_definition_and_reductions():
    logits = torch.randn(6, 5)
    p = logits.softmax(-1)
    per = -(p * p.log()).sum(-1)
    torch.testing.assert_close(mlh.predictive_entropy(logits, reduction="none"), per)
    torch.testing.assert_close(mlh.predictive_entropy(logits), per.mean())
    torch.testing.assert_close(mlh.predictive_entropy(logits, reduction="sum"), per.sum())
    dense = torch.randn(2, 3, 4)  # classes along dim 1
    want = mlh.predictive_entropy(dense.movedim(1, -1), reduction="none")
    torch.testing.assert_close(mlh.predictive_entropy(dense, dim=1, reduction="none"), want)


def test_entropy_gradients_are_right_and_finite_at_extreme_logits():
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mlh.predictive_entropy, (z,))
    extreme = torch.tensor([[1e4, 0.0, -1e4], [100.0, -100.0, 0.0]], requires_grad=True)
    mlh.predictive_entropy(extreme).backward()
    assert torch.isfinite(extreme.grad).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, *LOW])
def test_entropy_returns_the_input_dtype(dtype, device):
    logits = torch.randn(8, 5, device=device)
    got = mlh.predictive_entropy(logits.to(dtype))
    assert got.dtype == dtype
    tol = 2e-2 if dtype in LOW else 1e-5
    want = mlh.predictive_entropy(logits.to(dtype).double())
    torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("penalty", [mlh.l1_penalty, mlh.l2_penalty])
def test_penalties_refuse_bad_inputs(penalty):
    with pytest.raises(TypeError, match="`params` must be a module"):
        penalty(3.0)
    with pytest.raises(ValueError, match="`params` is empty"):
        penalty([])
    with pytest.raises(TypeError, match=r"`params\[1\]` must be a tensor"):
        penalty([torch.ones(2, 2), "w"])
    with pytest.raises(TypeError, match=r"`params\[0\]` must be a floating-point"):
        penalty([torch.ones(2, 2, dtype=torch.long)])
    with pytest.raises(TypeError, match="`skip_1d` must be a bool"):
        penalty(_net(), skip_1d=1)


def test_weight_decay_groups_refuse_bad_inputs():
    with pytest.raises(TypeError, match=r"`model` must be a torch\.nn\.Module"):
        mlh.weight_decay_groups(list(_net().parameters()), 0.1)
    with pytest.raises(ValueError, match="`weight_decay` must be >= 0"):
        mlh.weight_decay_groups(_net(), -0.1)
    with pytest.raises(TypeError, match="`weight_decay` must be a real number"):
        mlh.weight_decay_groups(_net(), "0.1")


def test_entropy_refuses_bad_inputs():
    with pytest.raises(TypeError, match="`input` must be a tensor"):
        mlh.predictive_entropy([[0.0, 1.0]])
    with pytest.raises(TypeError, match="floating-point logits"):
        mlh.predictive_entropy(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="`dim` must be a dimension"):
        mlh.predictive_entropy(torch.zeros(2, 3), dim=2)
    with pytest.raises(ValueError, match="`dim` must be a dimension"):
        mlh.predictive_entropy(torch.tensor(1.0))
    with pytest.raises(ValueError, match="no class"):
        mlh.predictive_entropy(torch.zeros(2, 0))
    with pytest.raises(ValueError, match="`reduction` must be one of"):
        mlh.predictive_entropy(torch.zeros(2, 3), reduction="batchmean")
    with pytest.raises(TypeError, match="`dim` must be an int"):
        mlh.predictive_entropy(torch.zeros(2, 3), dim=True)


INF = float("inf")


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


# Issue 20 regression: predictive_entropy NaN for -inf logits, imprecise for confident rows (D3)
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

# Issue 20 regression: predictive_entropy NaN for -inf logits, imprecise for confident rows (D3)
def test_predictive_entropy_keeps_its_precision_for_confident_rows(row, dtype, rel):
    x = torch.tensor([row], dtype=dtype, requires_grad=True)
    value = mlh.predictive_entropy(x)
    value.backward()
    h, grad = _entropy_mp(row)
    assert value.item() == pytest.approx(h, rel=rel)
    for got, want in zip(x.grad[0].tolist(), grad):
        assert got == pytest.approx(want, rel=rel * 10, abs=1e-300)


# Issue 20 regression: predictive_entropy NaN for -inf logits, imprecise for confident rows (D3)
def test_predictive_entropy_second_derivative_is_right():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mlh.predictive_entropy, (x,))
    assert torch.autograd.gradgradcheck(mlh.predictive_entropy, (x,))
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    entropy = lambda z: mlh.predictive_entropy(z, dim=1, reduction="none")  # noqa: E731
    assert torch.autograd.gradgradcheck(entropy, (x,))


# Issue 20 regression: l1/l2_penalty counted a tensor twice and frozen weights (D6)
@pytest.mark.parametrize("penalty", [mlh.l1_penalty, mlh.l2_penalty])
def test_penalties_refuse_a_tensor_listed_twice(penalty):
    w = torch.randn(2, 2, requires_grad=True)
    with pytest.raises(ValueError, match=r"`params\[1\]` is `params\[0\]` again"):
        penalty([w, w])


# Issue 20 regression: l1/l2_penalty counted a tensor twice and frozen weights (D6)
@pytest.mark.parametrize("penalty", [mlh.l1_penalty, mlh.l2_penalty])
def test_penalties_skip_frozen_weights_as_weight_decay_groups_does(penalty):
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    net[0].weight.requires_grad_(False)
    decayed = mlh.weight_decay_groups(net, 0.1)[0]["params"]
    assert len(decayed) == 1 and decayed[0] is net[1].weight
    torch.testing.assert_close(penalty(net), penalty([net[1].weight]))
    torch.testing.assert_close(penalty(list(net.parameters())), penalty([net[1].weight]))


# Issue 20 regression: l1/l2_penalty counted a tensor twice and frozen weights (D6)
def test_penalties_still_count_plain_tensors():
    assert mlh.l2_penalty(torch.ones(2, 2)).item() == 2.0  # not a frozen parameter
