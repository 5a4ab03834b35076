"""Tests of multiloss_helpers/stats.py: Student's t quantiles and paired comparisons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

import multiloss_helpers as mlh

# Two-sided 95% (and other) points of Student's t, from published tables (8 digits).
TABLE = [
    (0.975, 1, 12.7062047),
    (0.975, 2, 4.30265273),
    (0.975, 4, 2.77644511),
    (0.975, 5, 2.57058184),
    (0.975, 7, 2.36462425),
    (0.975, 29, 2.04522964),
    (0.95, 10, 1.81246112),
    (0.995, 3, 5.84090931),
    (0.9995, 1, 636.619249),
    (0.6, 12, 0.25903274),
]


@pytest.mark.parametrize(("p", "df", "expected"), TABLE)
def test_t_quantile_matches_the_tables(p, df, expected):
    assert mlh.t_quantile(p, df) == pytest.approx(expected, rel=1e-7)


def test_t_quantile_is_symmetric_and_tends_to_the_normal():
    assert mlh.t_quantile(0.5, 3) == 0.0
    assert mlh.t_quantile(0.025, 4) == pytest.approx(-mlh.t_quantile(0.975, 4), rel=1e-12)
    normal = 1.959963985  # the standard normal's 97.5% point
    assert mlh.t_quantile(0.975, 10**7) == pytest.approx(normal, rel=1e-6)


def test_t_quantile_inverts_the_cauchy_distribution():
    # one degree of freedom is the Cauchy distribution: its quantile is tan(pi (p - 1/2))
    for p in (0.55, 0.7, 0.9, 0.99, 0.3):
        assert mlh.t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"p": 0.0, "df": 3}, ValueError, "`p` must be > 0"),
        ({"p": 1.0, "df": 3}, ValueError, "`p` must be < 1"),
        ({"p": float("nan"), "df": 3}, ValueError, "`p` must be finite"),
        ({"p": "0.9", "df": 3}, TypeError, "`p` must be a real number"),
        ({"p": 0.9, "df": 0}, ValueError, "`df` must be >= 1"),
        ({"p": 0.9, "df": 2.5}, TypeError, "`df` must be an int"),
    ],
)
def test_t_quantile_refuses_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.t_quantile(**kwargs)


def test_paired_difference_by_hand():
    a, b = [0.81, 0.78, 0.85, 0.80], [0.74, 0.75, 0.79, 0.71]
    result = mlh.paired_difference(a, b)
    assert isinstance(result, mlh.PairedDifference)
    diff = np.subtract(a, b)
    assert result.n == 4
    assert result.mean == pytest.approx(diff.mean(), rel=1e-12)
    assert result.se == pytest.approx(diff.std(ddof=1) / 2, rel=1e-12)
    assert result.t_critical == pytest.approx(3.18244631, rel=1e-7)
    assert result.t == pytest.approx(result.mean / result.se)
    assert result.verdict == "higher" and result.clear
    assert str(result) == "+0.0625 ± 0.013 (higher)"
    assert mlh.paired_difference(b, a).verdict == "lower"


def test_paired_difference_is_about_pairs_not_spreads():
    # a large spread between seeds, a small constant gain on each: clear only when paired
    base = torch.tensor([0.1, 0.5, 0.9, 0.3, 0.7], dtype=torch.float64)
    result = mlh.paired_difference(base + 0.01 + 1e-3 * torch.arange(5), base)
    assert result.verdict == "higher"
    shuffled = mlh.paired_difference(base + 0.01, base[[2, 4, 0, 1, 3]])
    assert shuffled.verdict == "no clear difference"


def test_the_threshold_follows_the_number_of_pairs_and_the_confidence():
    diffs = [0.3, -0.1, 0.5, 0.2, 0.1, 0.25, 0.05, 0.15]
    for n in (2, 3, 5, 8):
        result = mlh.paired_difference(diffs[:n], [0.0] * n)
        assert result.t_critical == pytest.approx(mlh.t_quantile(0.975, n - 1))
    loose = mlh.paired_difference(diffs[:3], [0.0] * 3, confidence=0.5)
    assert loose.t_critical == pytest.approx(mlh.t_quantile(0.75, 2))
    assert loose.verdict == "higher"
    assert mlh.paired_difference(diffs[:3], [0.0] * 3).verdict == "no clear difference"


def test_identical_differences_give_a_clear_verdict_and_zero_none():
    same = mlh.paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert same.se == 0 and same.t == math.inf and same.verdict == "higher"
    none = mlh.paired_difference([1.0, 2.0], [1.0, 2.0])
    assert none.t == 0.0 and none.verdict == "no clear difference" and not none.clear


@pytest.mark.parametrize(
    "convert",
    [
        torch.tensor,
        lambda v: torch.tensor(v, dtype=torch.float32),
        lambda v: torch.tensor(v, dtype=torch.bfloat16),
        np.array,
        pd.Series,
        tuple,
        lambda v: [np.float32(x) for x in v],
    ],
)
def test_inputs_of_every_kind_give_the_same_answer(convert):
    a, b = [0.5, 0.75, 1.0, 0.25], [0.25, 0.5, 0.5, 0.0]
    expected = mlh.paired_difference(a, b)
    result = mlh.paired_difference(convert(a), convert(b))
    assert result.verdict == expected.verdict
    assert result.mean == pytest.approx(expected.mean, rel=1e-12)
    assert result.se == pytest.approx(expected.se, rel=1e-12)


def test_integer_scores_are_accepted():
    result = mlh.paired_difference(torch.tensor([3, 5, 4]), np.array([1, 2, 2]))
    assert result.mean == pytest.approx(7 / 3)


def test_a_pandas_frame_column_keeps_its_order():
    frame = pd.DataFrame({"seed": [2, 0, 1], "x": [1.0, 2.0, 4.0], "y": [0.5, 1.0, 3.0]})
    result = mlh.paired_difference(frame["x"], frame["y"])
    assert result.mean == pytest.approx(2.5 / 3)


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "error", "match"),
    [
        ([1.0, 2.0], [1.0], {}, ValueError, "one value per seed each.*got 2 and 1"),
        ([1.0], [2.0], {}, ValueError, "at least 2 pairs, got 1"),
        (
            [1.0, float("nan")],
            [1.0, 2.0],
            {},
            ValueError,
            "`a` must be finite, got nan at position 1",
        ),
        (
            [1.0, 2.0],
            [float("inf"), 2.0],
            {},
            ValueError,
            "`b` must be finite, got inf at position 0",
        ),
        (torch.ones(2, 2), torch.ones(2, 2), {}, ValueError, r"`a` must be 1-D.*shape \(2, 2\)"),
        ("12", [1.0, 2.0], {}, TypeError, "`a` must be a 1-D tensor"),
        ([1.0, 2.0], [True, False], {}, TypeError, "`b` must be a 1-D tensor"),
        ([1.0, 2.0], np.array(["x", "y"]), {}, TypeError, "`b` must hold real numbers"),
        (torch.tensor([True, False]), [1.0, 2.0], {}, TypeError, "`a` must hold real numbers"),
        (torch.tensor([1j, 2j]), [1.0, 2.0], {}, TypeError, "`a` must hold real numbers"),
        ([1.0, 2.0], [1.0, 2.0], {"confidence": 1.0}, ValueError, "`confidence` must be < 1"),
        ([1.0, 2.0], [1.0, 2.0], {"confidence": "95%"}, TypeError, "`confidence` must be a real"),
    ],
)
def test_paired_difference_refuses_bad_input(a, b, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.paired_difference(a, b, **kwargs)


def test_a_tensor_that_needs_grad_is_read_without_its_graph():
    a = torch.tensor([1.0, 2.0, 3.5], requires_grad=True)
    result = mlh.paired_difference(a * 2, torch.tensor([1.0, 3.0, 6.0]))
    assert isinstance(result.mean, float) and result.mean == pytest.approx(1.0)
    assert a.grad is None
