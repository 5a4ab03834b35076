"""Chapter 16's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The wrong answers are the usual ones for missing labels: the mean over every entry instead of
the labelled ones, NaN that leaks through a product with the mask, 0 / 0 on a batch without
labels, a regression on the zeros of a hurdle target, and probabilities reported as measured
shares.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import multiloss_helpers as mlh

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("torch.where", "[mask]", "clamp", "y > 0]")

SIZES = {"big": 80, "medium": 15, "small": 5}
TS = (1, 2, 5, 100)


def _masked(values, mask):
    kept = torch.where(mask, values, torch.zeros((), dtype=values.dtype))
    return kept.sum() / mask.sum().clamp_min(1)


def _hurdle(logit, amount, y):
    positive = y > 0
    bce = F.binary_cross_entropy_with_logits(logit, positive.float())
    squared = (amount - torch.where(positive, y, 0.0)) ** 2
    return bce + torch.where(positive, squared, 0.0).sum() / positive.sum().clamp_min(1)


def _shares(sizes, temperature, steps, seed, *, strategy="temperature", probabilities=False):
    mixer = mlh.TaskMixer(
        {name: range(size) for name, size in sizes.items()},
        strategy=strategy,
        temperature=temperature,
        seed=seed,
        steps_per_epoch=steps,
    )
    if probabilities:
        return mixer.probabilities
    names = [name for name, _ in mixer]
    return {name: names.count(name) / steps for name in sizes}


def _report(measure):
    def call(check):
        return check(measure(), SIZES, steps=2000, seed=3)

    return call


CASES = [
    right("check_masked_mean", _masked),
    right("check_masked_mean", lambda v, m: v[m].sum() / max(int(m.sum()), 1), label="indexed"),
    wrong(
        "check_masked_mean",
        lambda v, m: (torch.where(m, v, 0.0)).mean(),
        "divides by every entry",
        label="every-entry",
    ),
    wrong(
        "check_masked_mean",
        lambda v, m: (v * m).sum() / m.sum().clamp_min(1),
        "NaN * 0 is NaN",
        label="nan-leaks",
    ),
    wrong("check_masked_mean", lambda v, m: v[m].mean(), "0 / 0", label="empty-nan"),
    wrong(
        "check_masked_mean",
        lambda v, m: torch.tensor(_masked(v, m).item()),
        "no graph",
        label="detached",
    ),
    wrong(
        "check_masked_mean",
        lambda v, m: mlh.masked_mean(v, m),
        "mlh.masked_mean",
        label="library",
    ),
    stub("check_masked_mean"),
    right("check_hurdle_loss", _hurdle),
    right(
        "check_hurdle_loss",
        lambda z, a, y: (
            F.binary_cross_entropy_with_logits(z, (y > 0).float())
            + mlh.masked_mean((a - torch.where(y > 0, y, 0.0)) ** 2, y > 0)
        ),
        label="with-masked-mean",
    ),
    wrong(
        "check_hurdle_loss",
        lambda z, a, y: F.binary_cross_entropy_with_logits(z, (y > 0).float()) + F.mse_loss(a, y),
        "only see the samples where y > 0",
        label="amount-on-zeros",
    ),
    wrong(
        "check_hurdle_loss",
        lambda z, a, y: (
            F.binary_cross_entropy_with_logits(z, (y > 0).float()) + ((a - y) ** 2 * (y > 0)).mean()
        ),
        "divides by every sample",
        label="wrong-denominator",
    ),
    wrong(
        "check_hurdle_loss",
        lambda z, a, y: mlh.masked_mean((a - torch.where(y > 0, y, 0.0)) ** 2, y > 0),
        "classification part",
        label="no-bce",
    ),
    wrong(
        "check_hurdle_loss",
        lambda z, a, y: (
            F.binary_cross_entropy_with_logits(z, (y > 0).float()) + ((a - y)[y > 0] ** 2).mean()
        ),
        "not finite",
        label="empty-nan",
    ),
    wrong(
        "check_hurdle_loss",
        lambda z, a, y: (
            F.binary_cross_entropy(torch.sigmoid(z), (y > 0).float())
            + mlh.masked_mean((a - torch.where(y > 0, y, 0.0)) ** 2, y > 0)
        ),
        "with confident logits",
        label="bce-on-probabilities",
    ),
    stub("check_hurdle_loss"),
    finding(
        "check_task_shares",
        _report(lambda: {t: _shares(SIZES, float(t), 2000, 3) for t in TS}),
        label="measured",
    ),
    finding(
        "check_task_shares",
        _report(lambda: {t: _shares(SIZES, float(t), 2000, 3, probabilities=True) for t in TS}),
        "the mixer's probabilities, not what it yielded",
        label="probabilities",
    ),
    finding(
        "check_task_shares",
        _report(
            lambda: {
                t: {n: c * 2000 for n, c in _shares(SIZES, float(t), 2000, 3).items()} for t in TS
            }
        ),
        "sum to 1",
        label="counts",
    ),
    finding(
        "check_task_shares",
        _report(lambda: {t: _shares(SIZES, float(t), 2000, 0) for t in TS}),
        "do not match a rerun",
        label="other-seed",
    ),
    finding(
        "check_task_shares",
        _report(
            lambda: {t: _shares(SIZES, float(t), 2000, 3, strategy="proportional") for t in TS}
        ),
        "do not match a rerun",
        label="temperature-ignored",
    ),
    finding(
        "check_task_shares",
        _report(lambda: {t: _shares(SIZES, float(t), 2000, 3) for t in (1, 2, 5)}),
        "at least T = 1, 2, 5 and 100",
        label="missing-T",
    ),
    finding(
        "check_task_shares",
        _report(lambda: stub_answer),
        "report a dict {T: {task: share}}",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
