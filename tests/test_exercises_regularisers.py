"""The chapter 12 checks pass a right answer, fail typical wrong ones with a hint, and let an
unfinished stub's NotImplementedError through."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from exercise_cases import case_tests

import multiloss_helpers as mlh
from multiloss_helpers import exercises as ex
from multiloss_helpers.exercises import regularisers


# ------------------------------------------------------------------ L2 penalty
def _weights(model):
    return [p for p in model.parameters() if p.dim() >= 2]


def _l2(model):
    return 0.5 * sum(p.square().sum() for p in _weights(model))


def _l2_with_biases(model):
    return 0.5 * sum(p.square().sum() for p in model.parameters())


def _l2_without_half(model):
    return sum(p.square().sum() for p in _weights(model))


def _l2_data(model):
    return 0.5 * sum(p.data.square().sum() for p in _weights(model))


def _l2_of_gradients(model):
    return 0.5 * sum(p.grad.square().sum() for p in model.parameters())


def _l2_norm_not_squared(model):
    return sum(p.norm() for p in _weights(model))


def _l2_matrices_only(model):  # misses the Conv1d's 3-D weight
    return 0.5 * sum(p.square().sum() for p in model.parameters() if p.dim() == 2)


def _l2_forbidden(model):
    return mlh.l2_penalty(model)


# ------------------------------------------------------------------ confidence penalty
def _confidence(z, t, beta):
    log_p = F.log_softmax(z, 1)
    return F.cross_entropy(z, t) + beta * (log_p.exp() * log_p).sum(1).mean()


def _confidence_wrong_sign(z, t, beta):
    log_p = F.log_softmax(z, 1)
    return F.cross_entropy(z, t) - beta * (log_p.exp() * log_p).sum(1).mean()


def _confidence_naive_log(z, t, beta):
    p = z.softmax(1)
    return F.cross_entropy(z, t) + beta * (p * p.log()).sum(1).mean()


def _confidence_summed(z, t, beta):
    log_p = F.log_softmax(z, 1)
    return F.cross_entropy(z, t) + beta * (log_p.exp() * log_p).sum()


def _confidence_detached(z, t, beta):
    log_p = F.log_softmax(z.detach(), 1)
    return F.cross_entropy(z, t) + beta * (log_p.exp() * log_p).sum(1).mean()


def _confidence_forbidden(z, t, beta):
    return F.cross_entropy(z, t) - beta * mlh.predictive_entropy(z)


CASES = {
    "check_l2_penalty": (
        _l2,
        [
            (_l2_with_biases, "biases or the normalisation weights"),
            (_l2_without_half, "twice the weight"),
            (_l2_data, "has no graph"),
            (_l2_of_gradients, "from the gradients"),
            (_l2_norm_not_squared, "should be the weight itself"),
            (_l2_matrices_only, "does not reach every input"),
            (_l2_forbidden, "mlh.l2_penalty"),
        ],
    ),
    "check_confidence_penalty": (
        _confidence,
        [
            (_confidence_wrong_sign, "lowers the entropy"),
            (_confidence_naive_log, "not finite"),
            (_confidence_summed, "grows with the batch size"),
            (_confidence_detached, "gradient of your loss"),
            (_confidence_forbidden, "mlh.predictive_entropy"),
        ],
    ),
}
INVESTIGATIONS = ["check_clip_factor"]  # tested below, with measured findings


def test_every_check_of_the_chapter_is_tested_with_three_wrong_answers():
    assert set(CASES) | set(INVESTIGATIONS) == set(regularisers.__all__)
    assert set(regularisers.__all__) <= set(ex.__all__)
    assert all(len(wrong) >= 3 for _, wrong in CASES.values())


(
    test_check_passes_a_right_answer,
    test_check_fails_a_typical_wrong_answer_with_a_hint,
    test_unfinished_stub_stops_with_not_implemented,
) = case_tests(CASES)


def test_the_package_functions_are_restored_after_a_check():
    originals = (mlh.l2_penalty, mlh.l1_penalty, mlh.predictive_entropy)
    ex.check_l2_penalty(_l2_forbidden)
    ex.check_confidence_penalty(_confidence_forbidden)
    assert originals == (mlh.l2_penalty, mlh.l1_penalty, mlh.predictive_entropy)


def test_the_right_l2_answer_matches_sgd_weight_decay():
    """What the check's gradient test stands for: the same steps as weight_decay."""
    model_a, model_b = (regularisers._l2_models()[0][1] for _ in range(2))
    x, y = torch.randn(8, 5), torch.randint(3, (8,))
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(mlh.weight_decay_groups(model_b, 0.3), lr=0.1)
    for _ in range(3):
        opt_a.zero_grad()
        (F.cross_entropy(model_a(x), y) + 0.3 * _l2(model_a)).backward()
        opt_a.step()
        opt_b.zero_grad()
        F.cross_entropy(model_b(x), y).backward()
        opt_b.step()
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(a, b)


def test_hints_never_contain_the_solution(capsys):
    giveaways = ("half", "1/2", "log_softmax", "dim() >= 2", "ndim")
    for name, (_, wrong) in CASES.items():
        for bad, _ in wrong:
            message = getattr(ex, name)(bad).message
            assert not any(word in message for word in giveaways), (name, message)
    capsys.readouterr()


# ------------------------------------------------------------------ investigation
def _clip_setup():
    model = mlh.MultiHeadNet(8, {"cls": 4, "reg": 1}, hidden=(32, 32), seed=0)
    batch = mlh.make_multitask_data(128, n_features=8, n_classes=4, seed=0)
    return model, batch


def _clip_factor(model, batch, k, max_norm=5.0, cls_only=False, clamp=True, invert=False):
    model.zero_grad()
    out = model(batch["x"])
    ce = F.cross_entropy(out["cls"], batch["y_cls"])
    loss = ce if cls_only else ce + F.mse_loss(out["reg"], k * batch["y_reg"])
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()
    factor = norm / max_norm if invert else max_norm / norm
    return min(1.0, factor) if clamp else factor


KS = (1, 3, 10, 30)


def test_a_measured_clip_factor_passes(capsys):
    model, batch = _clip_setup()
    factors = {k: _clip_factor(model, batch, k) for k in KS}
    assert factors[1] == 1.0 and factors[30] < 0.2  # the setting bites at large k only
    assert ex.check_clip_factor(factors, model, batch, max_norm=5.0)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("classification only", "is off"),
        ("not clamped", "number in \\(0, 1\\]"),
        ("inverted", "number in \\(0, 1\\]|is off"),
        ("another max_norm", "is off"),
        ("missing k", "missing from your dict"),
        ("not a dict", "report a dict"),
    ],
)
def test_typical_wrong_clip_factors_fail(wrong, hint, capsys):
    model, batch = _clip_setup()
    answers = {
        "classification only": {k: _clip_factor(model, batch, k, cls_only=True) for k in KS},
        "not clamped": {k: _clip_factor(model, batch, k, clamp=False) for k in KS},
        "inverted": {k: _clip_factor(model, batch, k, invert=True) for k in KS},
        "another max_norm": {k: _clip_factor(model, batch, k, max_norm=1.0) for k in KS},
        "missing k": {k: _clip_factor(model, batch, k) for k in (1, 3, 10, 20)},
        "not a dict": [_clip_factor(model, batch, k) for k in KS],
    }
    result = ex.check_clip_factor(answers[wrong], model, batch, max_norm=5.0)
    assert not result
    assert re.search(hint, result.message), result.message
