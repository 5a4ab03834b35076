"""Chapter 8's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The wrong answers include balanced weights without an entry for an absent class, and
functions that the exercise forbids.
"""

from __future__ import annotations

import functools

import pytest
import torch

import multiloss_helpers as mlh
from multiloss_helpers.exercises.ch08_class_imbalance import _absence_probability

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _balanced_accuracy(p, t):
    return torch.stack([(p[t == c] == c).float().mean() for c in torch.unique(t)]).mean()


def _recall_of_every_label_seen(p, t):
    labels = torch.unique(torch.cat([p, t]))
    return torch.stack([(p[t == c] == c).float().mean() for c in labels]).nan_to_num().mean()


@functools.cache
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


@functools.cache
def _right_shares(epochs: int) -> dict[int, float]:
    return {b: _measured(_target(), b, epochs=epochs) for b in (32, 128, 512)}


def _shares(wrong_shares):
    """The check, run on shares made from the right ones (measured over 5 epochs)."""
    return lambda check: check(wrong_shares(_right_shares(5)), _target(), rare_class=4)


OFF = "off by more than"

CASES = [
    right(
        "check_balanced_weights",
        lambda t, c: t.numel() / (c * torch.bincount(t, minlength=c).float()),
    ),
    wrong(
        "check_balanced_weights",
        lambda t, c: t.numel() / (c * torch.bincount(t).float()),
        "every class needs",
    ),
    wrong(
        "check_balanced_weights",
        lambda t, c: 1.0 / torch.bincount(t, minlength=c).float(),
        "n / C",
    ),
    wrong(
        "check_balanced_weights",
        lambda t, c: t.numel() / (len(torch.unique(t)) * torch.bincount(t, minlength=c).float()),
        "n / C",
    ),
    wrong("check_balanced_weights", lambda t, c: mlh.class_weights(t, c), "mlh.class_weights"),
    stub("check_balanced_weights"),
    right("check_balanced_accuracy", _balanced_accuracy),
    wrong("check_balanced_accuracy", lambda p, t: (p == t).float().mean().item(), "majority"),
    wrong(
        "check_balanced_accuracy",
        lambda p, t: mlh.per_class_precision(p, t).nan_to_num().mean().item(),
        "majority",
    ),
    wrong("check_balanced_accuracy", _recall_of_every_label_seen, "class 3"),
    wrong(
        "check_balanced_accuracy",
        lambda p, t: mlh.balanced_accuracy(p, t),
        "mlh.balanced_accuracy",
    ),
    stub("check_balanced_accuracy"),
    # the investigation: the share of mini-batches that hold no sample of the rare class
    finding(
        "check_rare_class_absence",
        lambda check: check(_right_shares(20), _target(), rare_class=4),
        label="measured",
    ),
    finding(
        "check_rare_class_absence",
        _shares(lambda right: {b: 1 - s for b, s in right.items()}),
        OFF,
        label="share with the class",
    ),
    finding(
        "check_rare_class_absence",
        _shares(lambda right: dict.fromkeys(right, float((_target() == 4).float().mean()))),
        OFF,
        label="share of rare samples",
    ),
    finding(
        "check_rare_class_absence",
        _shares(lambda right: {b: _measured(_target(), b, epochs=5, rare=3) for b in right}),
        OFF,
        label="another class",
    ),
    finding(
        "check_rare_class_absence",
        _shares(lambda right: {32: right[32], 128: right[128], 64: 0.5}),
        "missing from your dict",
        label="missing size",
    ),
    finding(
        "check_rare_class_absence",
        _shares(lambda right: [right[32], right[128], right[512]]),
        "report a dict",
        label="not a dict",
    ),
    finding(
        "check_rare_class_absence",
        _shares(lambda right: {b: 100 * s for b, s in right.items()}),
        "a number in [0, 1]",
        label="percent",
    ),
    finding(
        "check_rare_class_absence",
        lambda check: check(stub_answer, _target(), rare_class=4),
        "report a dict {batch_size: share} with at least three batch sizes, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_exact_probability_matches_a_hand_case():
    # 2 rare among 4: a batch of 2 misses both with probability (2/4) * (1/3)
    assert _absence_probability(4, 2, 2) == pytest.approx(1 / 6)
    assert _absence_probability(4, 2, 3) == 0.0
