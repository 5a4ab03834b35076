"""The imbalance part's investigation check: a measured share, within a tolerance."""

from __future__ import annotations

import re

import pytest

import multiloss_helpers as mlh
from multiloss_helpers.exercises.imbalance import _absence_probability


def _target():
    return mlh.make_imbalanced_data(2100, proportions=(0.6, 0.25, 0.1, 0.04, 0.01), seed=0)["y"]


def _measured(target, batch_size, epochs=20, rare=4):
    absent = total = 0
    for epoch in range(epochs):
        loader = mlh.BatchLoader({"y": target}, batch_size, seed=epoch)
        for batch in loader:
            if len(batch["y"]) < batch_size:
                continue
            total += 1
            absent += int(not (batch["y"] == rare).any())
    return absent / total


def test_a_measured_answer_passes():
    target = _target()
    shares = {b: _measured(target, b) for b in (32, 128, 512)}
    assert mlh.exercises.check_rare_class_absence(shares, target, rare_class=4)


def test_exact_probability_matches_a_hand_case():
    # 2 rare among 4: a batch of 2 misses both with probability (2/4) * (1/3)
    assert _absence_probability(4, 2, 2) == pytest.approx(1 / 6)
    assert _absence_probability(4, 2, 3) == 0.0


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("share with the class", "off by more than"),
        ("share of rare samples", "off by more than"),
        ("another class", "off by more than"),
        ("missing size", "missing from your dict"),
        ("not a dict", "report a dict"),
        ("percent", "a number in \\[0, 1\\]"),
    ],
)
def test_typical_wrong_answers_fail(wrong, hint, capsys):
    target = _target()
    right = {b: _measured(target, b, epochs=5) for b in (32, 128, 512)}
    answers = {
        "share with the class": {b: 1 - s for b, s in right.items()},
        "share of rare samples": dict.fromkeys(right, float((target == 4).float().mean())),
        "another class": {b: _measured(target, b, epochs=5, rare=3) for b in right},
        "missing size": {32: right[32], 128: right[128], 64: 0.5},
        "not a dict": [right[32], right[128], right[512]],
        "percent": {b: 100 * s for b, s in right.items()},
    }
    result = mlh.exercises.check_rare_class_absence(answers[wrong], target, rare_class=4)
    assert not result
    assert re.search(hint, result.message)
