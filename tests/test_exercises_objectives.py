"""The multi-objective checks (chapter 15): a right answer passes, typical wrong ones fail.

Each check meets its right answer, at least three typical wrong answers (each with a stable
part of the hint it must print), a call to the function the exercise forbids, and an
unfinished stub (NotImplementedError goes through).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from exercise_cases import case_tests

import multiloss_helpers as mlh
from multiloss_helpers import exercises as ex


# --------------------------------------------------------------- min_norm_two
def _min_norm_two(g1, g2):
    diff = g1 - g2
    denom = diff @ diff
    if denom == 0:
        return torch.tensor([0.5, 0.5], dtype=g1.dtype)
    gamma = ((g2 - g1) @ g2 / denom).clamp(0, 1)
    return torch.stack([gamma, 1 - gamma])


def _min_norm_unclipped(g1, g2):
    diff = g1 - g2
    denom = diff @ diff
    if denom == 0:
        return torch.tensor([0.5, 0.5])
    gamma = (g2 - g1) @ g2 / denom
    return torch.stack([gamma, 1 - gamma])


def _min_norm_unguarded(g1, g2):
    gamma = ((g2 - g1) @ g2 / ((g1 - g2) @ (g1 - g2))).clamp(0, 1)
    return torch.stack([gamma, 1 - gamma])


def _min_norm_swapped(g1, g2):
    return _min_norm_two(g1, g2).flip(0)


def _min_norm_shorter_only(g1, g2):
    # all weight on the shorter gradient: right for parallel ones only
    return torch.tensor([1.0, 0.0]) if g1.norm() <= g2.norm() else torch.tensor([0.0, 1.0])


def _min_norm_library(g1, g2):
    return mlh.min_norm_weights(torch.stack([g1, g2]))


def _min_norm_via_mgda(g1, g2):
    d = mlh.mgda(torch.stack([g1, g2]))
    return _min_norm_two(g1, g2) + 0 * d.sum()


# -------------------------------------------------------------- non_dominated
def _non_dominated(points):
    no_worse = (points[None, :, :] <= points[:, None, :]).all(dim=2)
    better = (points[None, :, :] < points[:, None, :]).any(dim=2)
    return ~(no_worse & better).any(dim=1)


def _strictly_better_everywhere(points):
    # misses weak domination: a tie on one objective keeps a dominated row
    strictly = (points[None, :, :] < points[:, None, :]).all(dim=2)
    return ~strictly.any(dim=1)


def _no_worse_drops_duplicates(points):
    # forgets "strictly better on one": a duplicate knocks out its twin
    n = len(points)
    no_worse = (points[None, :, :] <= points[:, None, :]).all(dim=2)
    no_worse &= ~torch.eye(n, dtype=torch.bool)
    return ~no_worse.any(dim=1)


def _maximised(points):
    return _non_dominated(-points)


def _as_list(points):
    return _non_dominated(points).tolist()


def _as_float(points):
    return _non_dominated(points).float()


def _smallest_sum(points):
    sums = points.sum(dim=1)
    return sums == sums.min()


CASES = {
    "check_min_norm_two": (
        _min_norm_two,
        [
            (_min_norm_unclipped, "not on the simplex"),
            (_min_norm_unguarded, "not finite"),
            (_min_norm_swapped, "which weight belongs"),
            (_min_norm_shorter_only, "shorter one on the simplex"),
            (lambda g1, g2: torch.tensor([0.5, 0.5]), "shorter one on the simplex"),
            (lambda g1, g2: _min_norm_two(g1, g2).tolist(), "tensor of shape (2,)"),
            (_min_norm_library, "mlh.min_norm_weights"),
            (_min_norm_via_mgda, "mlh.mgda"),
        ],
    ),
    "check_non_dominated": (
        _non_dominated,
        [
            (_strictly_better_everywhere, "for a tie on one objective: you kept row 1"),
            (_no_worse_drops_duplicates, "for duplicates on the front: you dropped row 0"),
            (_maximised, "for one dominated point"),
            (_smallest_sum, "for a tie on one objective: you dropped row 2"),
            (_as_list, "return a bool tensor"),
            (_as_float, "return a bool tensor"),
            (lambda points: mlh.pareto_front(points), "mlh.pareto_front"),
        ],
    ),
}


def test_every_chapter_15_check_is_tested_with_three_wrong_answers():
    from multiloss_helpers.exercises import objectives

    assert set(CASES) | {"check_mgda_scale"} == set(objectives.__all__)
    assert all(len(wrong) >= 3 for _, wrong in CASES.values())
    assert set(objectives.__all__) <= set(ex.__all__)


(
    test_check_passes_a_right_answer,
    test_check_fails_a_typical_wrong_answer_with_a_hint,
    test_unfinished_stub_stops_with_not_implemented,
) = case_tests(CASES)


def test_forbidden_functions_are_restored_after_the_checks():
    originals = (mlh.min_norm_weights, mlh.mgda, mlh.MGDA, mlh.pareto_front)
    ex.check_min_norm_two(_min_norm_library)
    ex.check_non_dominated(lambda points: mlh.pareto_front(points))
    assert originals == (mlh.min_norm_weights, mlh.mgda, mlh.MGDA, mlh.pareto_front)


def test_identical_gradients_accept_any_weights_on_the_simplex():
    def uneven_when_identical(g1, g2):
        if torch.equal(g1, g2):
            return torch.tensor([0.9, 0.1])
        return _min_norm_two(g1, g2)

    assert ex.check_min_norm_two(uneven_when_identical)


def test_the_right_answers_agree_with_the_library():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        g1, g2 = torch.randn(2, 7, generator=g)
        torch.testing.assert_close(
            _min_norm_two(g1, g2), mlh.min_norm_weights(torch.stack([g1, g2]))
        )
    points = torch.randint(0, 4, (50, 3), generator=g).float()
    assert torch.equal(_non_dominated(points), mlh.pareto_front(points))


def test_hints_never_contain_the_solution(capsys):
    giveaways = ("clamp", "clip", "(g2 - g1)", "<=", "any(", "all(")
    for name, (_, wrong) in CASES.items():
        for bad, _ in wrong:
            message = getattr(ex, name)(bad).message
            assert not any(word in message for word in giveaways), (name, message)
    capsys.readouterr()


# ------------------------------------------------- investigation: mgda_scale
def _setup():
    data = mlh.make_multitask_data(128, n_features=8, n_classes=3, seed=0)
    data["y_reg"] = 10 * data["y_reg"]
    model = mlh.MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=0)
    return model, data


def _cls_weight(model, batch, k, *, params=None, scale_target=False, task=0):
    out = model(batch["x"])
    reg, target = out["reg"], batch["y_reg"]
    mse = F.mse_loss(reg, k * target) if scale_target else k * F.mse_loss(reg, target)
    losses = [F.cross_entropy(out["cls"], batch["y_cls"]), mse]
    params = list(params if params is not None else model.shared_parameters())
    grads = mlh.per_loss_grads(losses, params)
    return float(mlh.min_norm_weights(grads)[task])


def _heads(model):
    return [*model.head_parameters("cls"), *model.head_parameters("reg")]


KS = (0.001, 0.01, 0.1, 1)


def test_a_measured_answer_passes():
    model, batch = _setup()
    weights = {k: _cls_weight(model, batch, k) for k in KS}
    assert ex.check_mgda_scale(weights, model, batch)
    assert weights[0.001] < 0.1 < 0.9 < weights[1]  # the weight moves across the range


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("regression's weight", "is off"),
        ("all parameters", "is off"),
        ("target scaled", "is off"),
        ("k ignored", "is off"),
        ("head parameters", "is off"),
        ("missing k", "at least k = 0.001, 0.01, 0.1 and 1"),
        ("not a weight", "number in [0, 1]"),
    ],
)
def test_typical_wrong_answers_fail(wrong, hint, capsys):
    model, batch = _setup()
    answers = {
        "regression's weight": {k: _cls_weight(model, batch, k, task=1) for k in KS},
        "all parameters": {k: _cls_weight(model, batch, k, params=model.parameters()) for k in KS},
        "target scaled": {k: _cls_weight(model, batch, k, scale_target=True) for k in KS},
        "k ignored": {k: _cls_weight(model, batch, 1.0) for k in KS},
        "head parameters": {k: _cls_weight(model, batch, k, params=_heads(model)) for k in KS},
        "missing k": {k: _cls_weight(model, batch, k) for k in KS[1:]},
        "not a weight": {k: 2.0 for k in KS},
    }
    result = ex.check_mgda_scale(answers[wrong], model, batch)
    assert not result and capsys.readouterr().out.startswith("✗")
    assert hint in result.message, result.message
