"""The Beyond-fixed-weights investigation check: gradient ratios measured, within a tolerance."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

import multiloss_helpers as mlh


def _setup():
    data = mlh.make_multitask_data(128, n_features=8, n_classes=3, seed=0)
    model = mlh.MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=0)
    return model, data


def _ratio(model, batch, k, params=None, scale_prediction=False, invert=False):
    out = model(batch["x"])
    reg = 1.0 * out["reg"]
    target = batch["y_reg"]
    mse = F.mse_loss(k * reg, target) if scale_prediction else F.mse_loss(reg, k * target)
    ce = F.cross_entropy(out["cls"], batch["y_cls"])
    params = list(params if params is not None else model.shared_parameters())

    def norm(loss):
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return torch.cat([g.flatten() for g in grads if g is not None]).norm()

    value = norm(mse) / norm(ce)
    return float(1 / value if invert else value)


KS = (1, 3, 10, 30)


def test_a_measured_answer_passes():
    model, batch = _setup()
    ratios = {k: _ratio(model, batch, k) for k in KS}
    assert mlh.exercises.check_gradient_scale(ratios, model, batch)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("inverted", "is off"),
        ("all parameters", "is off"),
        ("prediction scaled", "is off"),
        ("missing k", "at least k = 1, 3, 10 and 30"),
        ("negative", "positive number"),
    ],
)
def test_typical_wrong_answers_fail(wrong, hint):
    model, batch = _setup()
    answers = {
        "inverted": {k: _ratio(model, batch, k, invert=True) for k in KS},
        "all parameters": {k: _ratio(model, batch, k, params=model.parameters()) for k in KS},
        "prediction scaled": {k: _ratio(model, batch, k, scale_prediction=True) for k in KS},
        "missing k": {k: _ratio(model, batch, k) for k in (1, 3, 10)},
        "negative": {k: -_ratio(model, batch, k) for k in KS},
    }
    result = mlh.exercises.check_gradient_scale(answers[wrong], model, batch)
    assert not result
    assert re.search(hint, result.message)
