"""Chapter 17's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The generalised Dice reference is compared with MONAI's ``GeneralizedDiceLoss`` where MONAI
is installed; the investigation's rows hand in floors measured on the chapter's data.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import multiloss_helpers as mlh

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("masked_fill", "isinf", "count**2", "one_hot")


def _gdl(logits, target, smooth, *, absent="max", power=2, over_batch=False):
    p = logits.softmax(1)
    t = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    dims = (0, 2, 3) if over_batch else (2, 3)
    count = t.sum(dims)
    w = 1 / count**power
    missing = torch.isinf(w)
    w = w.masked_fill(missing, 0.0)
    if absent == "max":
        w = torch.where(missing, w.max(-1, keepdim=True).values, w)
    overlap = (w * (p * t).sum(dims)).sum(-1)
    total = (w * (p.sum(dims) + count)).sum(-1)
    return (1 - (2 * overlap + smooth) / (total + smooth)).mean()


def _gdl_no_replacement(logits, target, smooth):
    p = logits.softmax(1)
    t = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    w = 1 / t.sum((2, 3)) ** 2  # inf for an absent class: inf * 0 is NaN
    overlap = (w * (p * t).sum((2, 3))).sum(1)
    total = (w * (p.sum((2, 3)) + t.sum((2, 3)))).sum(1)
    return (1 - (2 * overlap + smooth) / (total + smooth)).mean()


def _data():
    return mlh.make_segmentation_data(48, seed=7)


def _floors(**options):
    y = _data()["y"]
    right_logits = 10 * F.one_hot(y, 4).permute(0, 3, 1, 2).float()
    return {
        s: mlh.dice_loss(right_logits, y, smooth=s, **options).item()
        for s in (1e-5, 1e-3, 1e-1, 1.0)
    }


def _floor_row(make, hint="", label="", kind=None):
    return finding("check_dice_floor", lambda check: check(make(), _data()), hint, label=label,
                   kind=kind)  # fmt: skip


CASES = [
    right("check_generalised_dice", _gdl),
    right(
        "check_generalised_dice",
        lambda z, t, s: _gdl(z.double(), t, s).float(),
        label="in float64",
    ),
    wrong(
        "check_generalised_dice",
        lambda z, t, s: _gdl(z, t, s, absent="zero"),
        "not a weight of 0",
        label="absent-zero",
    ),
    wrong(
        "check_generalised_dice",
        lambda z, t, s: _gdl(z, t, s, power=1),
        "count squared",
        label="not-squared",
    ),
    wrong(
        "check_generalised_dice",
        lambda z, t, s: _gdl(z, t, s, over_batch=True),
        "one Dice over the whole batch",
        label="batch",
    ),
    wrong("check_generalised_dice", _gdl_no_replacement, "not finite", label="inf-weights"),
    wrong(
        "check_generalised_dice",
        lambda z, t, s: mlh.dice_loss(z, t, smooth=s),
        "mlh.dice_loss",
        label="library",
    ),
    wrong(
        "check_generalised_dice",
        lambda z, t, s: _gdl(z.detach(), t, s),
        "no graph",
        label="detached",
    ),
    stub("check_generalised_dice"),
    _floor_row(_floors, label="measured"),
    _floor_row(lambda: _floors(per_image=False), "batch Dice", label="batch"),
    _floor_row(lambda: _floors(include_background=False), "background left out", label="no-bg"),
    _floor_row(
        lambda: {s: v * 1.01 for s, v in _floors().items()},
        "not what the experiment gives",
        label="off",
    ),
    _floor_row(
        lambda: {k: v for k, v in _floors().items() if k != 1e-3},
        "smooth=0.001 is missing",
        label="missing",
    ),
    _floor_row(lambda: list(_floors().values()), "report a dict", label="list"),
    finding(
        "check_dice_floor",
        lambda check: check(stub_answer, _data()),
        "report a dict {smooth: loss}, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_generalised_dice_reference_equals_monai():
    monai = pytest.importorskip("monai.losses")
    from multiloss_helpers.exercises.ch17_dice_segmentation import (
        _generalised,
        _segmentation_case,
    )

    logits, target = _segmentation_case(0, 4, 4, 6)
    want = monai.GeneralizedDiceLoss(softmax=True, to_onehot_y=True)(logits, target.unsqueeze(1))
    torch.testing.assert_close(_generalised(logits, target, 1e-5).mean(), want)
