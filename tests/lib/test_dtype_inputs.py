"""Tensor dtypes at the door: complex, integer, bool and narrow dtypes where they do not fit.

A sweep over every public function found these inputs either failing deep inside torch,
or accepted with information silently dropped (the imaginary part, the digits of a
float64 value, the meaning of a uint8 index); each test pins the fix.

Cross-module on purpose: the file is one sweep over the package's public functions (losses,
class_balance, grads, combine, schedules, history, weighting, plotting, models), kept
together so that a new public function is checked against the same list of dtypes; each
module's own tests live in ``test_<module>.py``.
"""

from __future__ import annotations

import matplotlib
import pytest
import torch
import torch.nn.functional as F

import multiloss_helpers as mlh

matplotlib.use("Agg")

NARROW_INTS = [torch.uint8, torch.int8, torch.int16, torch.int32]


# ------------------------------------------------------------------- integer class labels
@pytest.mark.parametrize("dtype", NARROW_INTS)
@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_loss_takes_any_integer_target_dtype(dtype, gamma):
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 2, 1, 0, 2])
    expected = mlh.focal_loss(logits, target, gamma=gamma)
    assert torch.equal(mlh.focal_loss(logits, target.to(dtype), gamma=gamma), expected)


def test_focal_loss_uint8_label_is_not_mistaken_for_the_negative_ignore_index():
    # uint8 156 == -100 after wrapping; it is an out-of-range class, not an ignored one
    target = torch.tensor([0, 156], dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"`target` holds class index 156"):
        mlh.focal_loss(torch.zeros(2, 3), target)


@pytest.mark.parametrize("dtype", NARROW_INTS)
def test_sample_weights_takes_any_integer_target_dtype(dtype):
    # uint8 used to index as a mask (a silent wrong answer), int8/int16 not at all
    class_weights = torch.tensor([0.5, 1.5])
    target = torch.tensor([0, 1])
    out = mlh.sample_weights(target.to(dtype), class_weights)
    assert torch.equal(out, torch.tensor([0.5, 1.5]))


# ------------------------------------------------------------- complex where real is meant
def test_per_loss_grads_refuses_a_complex_loss():
    w = torch.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match=r"`losses\[0\]` must be a real floating-point"):
        mlh.per_loss_grads([(w.to(torch.complex64) ** 2).sum()], [w])


def test_assert_connected_refuses_a_complex_loss():
    w = torch.randn(3, requires_grad=True)
    with pytest.raises(TypeError, match="`loss` must be a real floating-point"):
        mlh.assert_connected((w.to(torch.complex64) ** 2).sum(), [w])


@pytest.mark.parametrize(
    "component",
    [
        lambda o, t: (o - t).square().mean().to(torch.complex64),
        lambda o, t: (o == t).sum(),
        lambda o, t: (o == t).all(),
    ],
    ids=["complex", "int", "bool"],
)
def test_multitask_loss_refuses_a_component_that_is_not_a_real_float(component):
    criterion = mlh.MultiTaskLoss({"a": component})
    with pytest.raises(TypeError, match="the loss of task 'a' must be a real floating-point"):
        criterion({"a": torch.ones(3)}, {"a": torch.zeros(3)})


@pytest.mark.parametrize(
    "loss", [torch.tensor(0.5 + 3j), torch.tensor(0), torch.tensor(True)], ids=str
)
def test_smoothed_gate_refuses_a_loss_that_is_not_a_real_float(loss):
    with pytest.raises(TypeError, match="`loss` must be a real floating-point"):
        mlh.SmoothedGate(1.0).update(loss)


def test_smoothed_gate_keeps_float64_digits():
    # 1 - 1e-12 is below the threshold 1; rounded to float32 it was 1.0 and the gate stayed shut
    gate = mlh.SmoothedGate(1.0, decay=0.0)
    assert float(gate.update(torch.tensor(1 - 1e-12, dtype=torch.float64))) == 1.0
    assert gate.average.dtype == torch.float64


@pytest.mark.parametrize("value", [torch.tensor(1.0 + 2j), torch.tensor(True)], ids=str)
@pytest.mark.parametrize("level", ["step", "epoch"])
def test_loss_history_refuses_complex_and_bool_tensors(value, level):
    history = mlh.LossHistory()
    log = history.log_step if level == "step" else history.log_epoch
    with pytest.raises(TypeError, match="component 'a' must be a real scalar tensor"):
        log({"a": value}, epoch=0)


def test_loss_history_keeps_float64_digits():
    history = mlh.LossHistory()
    third = torch.tensor(1 / 3, dtype=torch.float64)
    history.log_step({"a": third, "b": torch.tensor(0.5)}, epoch=0)
    history.log_epoch({"a": third}, epoch=0)
    assert history.steps("a") == [1 / 3]
    assert history.epochs("a") == [1 / 3]
    assert history.steps("b") == [0.5]


@pytest.mark.parametrize("cls", [mlh.PCGrad, mlh.MGDA])
def test_gradient_surgery_refuses_complex_shared_parameters(cls):
    shared = torch.zeros(3, dtype=torch.complex64, requires_grad=True)
    with pytest.raises(TypeError, match=r"`shared\[0\]` must be a real floating-point"):
        cls(2, shared=[shared])


def test_plot_loss_distribution_refuses_complex_losses():
    with pytest.raises(TypeError, match="`losses` must hold real numbers"):
        mlh.plot_loss_distribution(torch.ones(4, dtype=torch.complex64))


# ------------------------------------------------------------- integer where float is meant
def test_assign_grad_refuses_an_integer_parameter():
    # the gradient 0.5 used to be truncated to 0 in an int64 .grad
    param = torch.zeros(3, dtype=torch.long)
    with pytest.raises(TypeError, match=r"`params\[0\]` must be a floating-point tensor"):
        mlh.assign_grad([param], torch.full((3,), 0.5))


@pytest.mark.parametrize(
    "cls", [mlh.EqualWeighting, mlh.UncertaintyWeighting], ids=lambda c: c.__name__
)
@pytest.mark.parametrize(
    "epoch_losses, error, match",
    [
        (torch.tensor([1.0, 2.0], dtype=torch.complex64), TypeError, "floating point"),
        (torch.tensor([1, 2]), TypeError, "floating point"),
        (torch.tensor(1.0), ValueError, r"shape \(2,\)"),
    ],
    ids=["complex", "int", "0-d"],
)
def test_epoch_end_checks_its_input_even_where_it_is_a_no_op(cls, epoch_losses, error, match):
    with pytest.raises(error, match=f"`epoch_losses` must .*{match}"):
        cls(2).epoch_end(epoch_losses)


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.ones(2, 3, dtype=torch.long), "`x` must be a real floating-point"),
        (torch.ones(2, 3, dtype=torch.complex64), "`x` must be a real floating-point"),
        (torch.ones(2, 3, dtype=torch.float64), "`x` must have the model's dtype torch.float32"),
    ],
    ids=["int", "complex", "float64"],
)
def test_multi_head_net_names_x_for_a_dtype_it_cannot_take(x, match):
    net = mlh.MultiHeadNet(3, {"a": 2}, seed=0)
    with pytest.raises(TypeError, match=match):
        net(x)


def test_multi_head_net_takes_bfloat16_under_autocast():
    net = mlh.MultiHeadNet(3, {"a": 2}, seed=0)
    x = torch.randn(4, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x.bfloat16())["a"]
    torch.testing.assert_close(out.float(), net(x)["a"], rtol=0.05, atol=0.05)


# -------------------------------------------------------- valid dtypes and layouts still work
def test_focal_loss_int8_target_with_non_contiguous_logits_matches_cross_entropy():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(1)).T  # (5, 3), strided
    target = torch.tensor([0, 9, 2, 9, 1, 9, 0, 9, 2, 9], dtype=torch.int8)[::2]
    expected = F.cross_entropy(logits.double(), target.long())
    torch.testing.assert_close(mlh.focal_loss(logits.double(), target, gamma=0.0), expected)
