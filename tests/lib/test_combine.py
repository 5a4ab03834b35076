"""MultiTaskLoss and LossResult."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import multiloss_helpers as mlh


def _batch():
    outputs = {
        "cls": torch.randn(8, 3, requires_grad=True),
        "reg": torch.randn(8, 1, requires_grad=True),
    }
    targets = {"cls": torch.randint(3, (8,)), "reg": torch.randn(8, 1)}
    return outputs, targets


def test_unit_weights_equal_the_plain_sum():
    outputs, targets = _batch()
    result = mlh.MultiTaskLoss({"cls": F.cross_entropy, "reg": F.mse_loss})(outputs, targets)
    expected = F.cross_entropy(outputs["cls"], targets["cls"]) + F.mse_loss(
        outputs["reg"], targets["reg"]
    )
    torch.testing.assert_close(result.total, expected)
    assert result.weights == {"cls": 1.0, "reg": 1.0}


def test_weighted_total_and_unweighted_components():
    outputs, targets = _batch()
    criterion = mlh.MultiTaskLoss(
        {"cls": F.cross_entropy, "reg": F.mse_loss}, weights={"reg": 0.25}
    )
    result = criterion(outputs, targets)
    cls, reg = (
        F.cross_entropy(outputs["cls"], targets["cls"]),
        F.mse_loss(outputs["reg"], targets["reg"]),
    )
    torch.testing.assert_close(result.components["cls"], cls)
    torch.testing.assert_close(result.components["reg"], reg)
    torch.testing.assert_close(result.total, cls + 0.25 * reg)


def test_gradient_matches_the_hand_written_sum():
    outputs, targets = _batch()
    criterion = mlh.MultiTaskLoss(
        {"cls": F.cross_entropy, "reg": F.mse_loss}, weights={"cls": 2.0, "reg": 0.5}
    )
    got = torch.autograd.grad(criterion(outputs, targets).total, list(outputs.values()))
    ref_total = 2.0 * F.cross_entropy(outputs["cls"], targets["cls"]) + 0.5 * F.mse_loss(
        outputs["reg"], targets["reg"]
    )
    ref = torch.autograd.grad(ref_total, list(outputs.values()))
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r)


def test_gradcheck_float64():
    criterion = mlh.MultiTaskLoss({"a": F.mse_loss, "b": F.l1_loss}, weights={"a": 0.3, "b": 1.7})
    ta, tb = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)

    def fn(a, b):
        return criterion({"a": a, "b": b}, {"a": ta, "b": tb}).total

    inputs = (
        torch.randn(4, 2, dtype=torch.float64, requires_grad=True),
        torch.randn(4, 2, dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(fn, inputs)


def test_per_call_weights_accept_tensors_and_do_not_persist():
    outputs, targets = _batch()
    criterion = mlh.MultiTaskLoss({"cls": F.cross_entropy, "reg": F.mse_loss})
    scheduled = criterion(outputs, targets, weights={"reg": torch.tensor(0.0)})
    torch.testing.assert_close(scheduled.total, scheduled.components["cls"])
    assert criterion.weights["reg"] == 1.0


def test_loss_modules_are_registered_and_move_with_the_combiner():
    weighted = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 3.0]))
    criterion = mlh.MultiTaskLoss({"cls": weighted, "reg": F.mse_loss})
    assert "loss_modules.cls.weight" in criterion.state_dict()
    criterion.to(torch.float64)
    assert criterion.loss_fn("cls").weight.dtype == torch.float64


def test_works_with_fit():
    data = mlh.make_multitask_data(64, n_features=4)
    model = mlh.MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(8,), seed=0)
    criterion = mlh.MultiTaskLoss({"cls": F.cross_entropy, "reg": F.mse_loss})

    def loss_fn(m, batch):
        return criterion(m(batch["x"]), {"cls": batch["y_cls"], "reg": batch["y_reg"]})

    history = mlh.fit(
        model,
        loss_fn,
        mlh.BatchLoader(data, 16),
        torch.optim.SGD(model.parameters(), 0.1),
        epochs=1,
        progress=False,
    )
    assert history.components == ["total", "cls", "reg"]


def test_repr():
    criterion = mlh.MultiTaskLoss(
        {"cls": F.cross_entropy, "reg": nn.MSELoss()}, weights={"reg": 0.5}
    )
    assert (
        "losses={'cls': cross_entropy, 'reg': MSELoss}, weights={'cls': 1.0, 'reg': 0.5}"
        in repr(criterion)
    )


def test_mismatched_names_list_both_sides():
    outputs, targets = _batch()
    criterion = mlh.MultiTaskLoss({"cls": F.cross_entropy, "reg": F.mse_loss})
    with pytest.raises(
        ValueError, match=r"`outputs` names \['cls'\] do not match the tasks \['cls', 'reg'\]"
    ):
        criterion({"cls": outputs["cls"]}, targets)
    with pytest.raises(ValueError, match=r"`targets` names \['cls', 'depth'\] do not match"):
        criterion(outputs, {"cls": targets["cls"], "depth": targets["reg"]})


@pytest.mark.parametrize(
    ("losses", "weights", "error", "match"),
    [
        ({}, None, TypeError, "`losses` must be a non-empty mapping"),
        ({"a": 3}, None, TypeError, r"`losses\['a'\]` must be callable"),
        ({"a.b": F.mse_loss}, None, ValueError, "without '.'"),
        ({"a": F.mse_loss}, {"b": 1.0}, ValueError, r"`weights` names \['b'\] are not tasks"),
        ({"a": F.mse_loss}, {"a": -1.0}, ValueError, "must be finite and >= 0"),
        ({"a": F.mse_loss}, {"a": float("nan")}, ValueError, "must be finite and >= 0"),
        ({"a": F.mse_loss}, {"a": float("inf")}, ValueError, "must be finite and >= 0"),
        ({"a": F.mse_loss}, {"a": "1"}, TypeError, "must be a number"),
        ({"a": F.mse_loss}, {"a": torch.tensor(-1.0)}, ValueError, "must be finite and >= 0"),
        ({"a": F.mse_loss}, {"a": torch.tensor(math.nan)}, ValueError, "must be finite and >= 0"),
        ({"a": F.mse_loss}, {"a": torch.tensor(math.inf)}, ValueError, "must be finite and >= 0"),
        ({"a": F.mse_loss}, {"a": torch.tensor(2)}, TypeError, "must be a floating-point tensor"),
        (
            {"a": F.mse_loss},
            {"a": torch.ones(2)},
            ValueError,
            r"must be a scalar, got shape \(2,\)",
        ),
        ({"a": F.mse_loss}, [1.0], TypeError, "`weights` must be a mapping"),
    ],
)
def test_bad_constructor_arguments(losses, weights, error, match):
    with pytest.raises(error, match=match):
        mlh.MultiTaskLoss(losses, weights)


def test_unreduced_component_is_refused():
    criterion = mlh.MultiTaskLoss({"a": lambda o, t: F.mse_loss(o, t, reduction="none")})
    with pytest.raises(ValueError, match=r"must be a scalar tensor.*reduction='mean'"):
        criterion({"a": torch.randn(3)}, {"a": torch.randn(3)})


def test_outputs_must_be_a_mapping():
    criterion = mlh.MultiTaskLoss({"a": F.mse_loss})
    with pytest.raises(TypeError, match="`outputs` must be a mapping"):
        criterion(torch.randn(3), {"a": torch.randn(3)})


def test_negative_or_nan_tensor_weight_per_call_is_refused():
    outputs, targets = _batch()
    criterion = mlh.MultiTaskLoss({"cls": F.cross_entropy, "reg": F.mse_loss})
    for bad in (-0.5, math.nan):
        with pytest.raises(ValueError, match=r"`weights\['reg'\]` must be finite and >= 0"):
            criterion(outputs, targets, weights={"reg": torch.tensor(bad)})
    result = criterion(outputs, targets, weights={"reg": torch.tensor(0.0)})
    torch.testing.assert_close(result.total, result.components["cls"])


# Issue 20 regression: MultiTaskLoss refused NumPy weights (D)
@pytest.mark.parametrize("weight", [np.float32(0.5), np.float64(0.5), np.int64(2)])
def test_multitask_loss_takes_numpy_weights(weight):
    loss = mlh.MultiTaskLoss({"a": nn.MSELoss()}, weights={"a": weight})
    out = loss({"a": torch.ones(2)}, {"a": torch.zeros(2)})
    assert out.total.item() == pytest.approx(float(weight))
