"""Chapter 15's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

Each check meets its right answer, typical wrong answers (each with a stable part of the
hint it must print), calls to the functions the exercise forbids, and an unfinished stub.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

import multiloss_helpers as mlh

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("clamp", "clip", "(g2 - g1)", "<=", "any(", "all(")


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


def _min_norm_uneven_when_identical(g1, g2):
    # identical gradients: any weights on the simplex give the same direction
    if torch.equal(g1, g2):
        return torch.tensor([0.9, 0.1])
    return _min_norm_two(g1, g2)


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


# ------------------------------------------------- investigation: mgda_scale
@functools.cache
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


def _weights(weights):
    """The check, run on the weights that ``weights(model, batch)`` measures."""

    def call(check):
        model, batch = _setup()
        return check(weights(model, batch), model, batch)

    return call


OFF = "is off"

CASES = [
    right("check_min_norm_two", _min_norm_two),
    right("check_min_norm_two", _min_norm_uneven_when_identical, "any weights when identical"),
    wrong("check_min_norm_two", _min_norm_unclipped, "not on the simplex"),
    wrong("check_min_norm_two", _min_norm_unguarded, "not finite"),
    wrong("check_min_norm_two", _min_norm_swapped, "which weight belongs"),
    wrong("check_min_norm_two", _min_norm_shorter_only, "shorter one on the simplex"),
    wrong(
        "check_min_norm_two", lambda g1, g2: torch.tensor([0.5, 0.5]), "shorter one on the simplex"
    ),
    wrong(
        "check_min_norm_two",
        lambda g1, g2: _min_norm_two(g1, g2).tolist(),
        "tensor of shape (2,)",
    ),
    wrong("check_min_norm_two", _min_norm_library, "mlh.min_norm_weights"),
    wrong("check_min_norm_two", _min_norm_via_mgda, "mlh.mgda"),
    stub("check_min_norm_two"),
    right("check_non_dominated", _non_dominated),
    wrong(
        "check_non_dominated",
        _strictly_better_everywhere,
        "for a tie on one objective: you kept row 1",
    ),
    wrong(
        "check_non_dominated",
        _no_worse_drops_duplicates,
        "for duplicates on the front: you dropped row 0",
    ),
    wrong("check_non_dominated", _maximised, "for one dominated point"),
    wrong("check_non_dominated", _smallest_sum, "for a tie on one objective: you dropped row 2"),
    wrong("check_non_dominated", _as_list, "return a bool tensor"),
    wrong("check_non_dominated", _as_float, "return a bool tensor"),
    wrong("check_non_dominated", lambda points: mlh.pareto_front(points), "mlh.pareto_front"),
    stub("check_non_dominated"),
    # the investigation: MGDA's weight on the classification loss as one loss is scaled
    finding(
        "check_mgda_scale",
        _weights(lambda model, batch: {k: _cls_weight(model, batch, k) for k in KS}),
        label="measured",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: {k: _cls_weight(m, b, k, task=1) for k in KS}),
        OFF,
        label="regression's weight",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: {k: _cls_weight(m, b, k, params=m.parameters()) for k in KS}),
        OFF,
        label="all parameters",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: {k: _cls_weight(m, b, k, scale_target=True) for k in KS}),
        OFF,
        label="target scaled",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: {k: _cls_weight(m, b, 1.0) for k in KS}),
        OFF,
        label="k ignored",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: {k: _cls_weight(m, b, k, params=_heads(m)) for k in KS}),
        OFF,
        label="head parameters",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: {k: _cls_weight(m, b, k) for k in KS[1:]}),
        "at least k = 0.001, 0.01, 0.1 and 1",
        label="missing k",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: dict.fromkeys(KS, 2.0)),
        "number in [0, 1]",
        label="not a weight",
    ),
    finding(
        "check_mgda_scale",
        _weights(lambda m, b: stub_answer),
        "report a dict {k: weight} for at least k = 0.001, 0.01, 0.1 and 1, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_the_right_answers_agree_with_the_library():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        g1, g2 = torch.randn(2, 7, generator=g)
        torch.testing.assert_close(
            _min_norm_two(g1, g2), mlh.min_norm_weights(torch.stack([g1, g2]))
        )
    points = torch.randint(0, 4, (50, 3), generator=g).float()
    assert torch.equal(_non_dominated(points), mlh.pareto_front(points))


def test_the_weight_moves_across_the_range():
    model, batch = _setup()
    weights = {k: _cls_weight(model, batch, k) for k in KS}
    assert weights[0.001] < 0.1 < 0.9 < weights[1]
