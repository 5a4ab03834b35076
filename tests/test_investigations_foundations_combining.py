"""The investigation checks of chapters 1 and 4 accept the finding and refuse wrong ones."""

from __future__ import annotations

import pytest
import torch

from multiloss_helpers.exercises import investigations as inv


@pytest.fixture(scope="module")
def bce_limit() -> float:
    return inv._bce_gradient_limit()


@pytest.fixture(scope="module")
def adam_limit() -> int:
    return inv._adam_scale_limit(seed=0)


def test_bce_limit_lies_between_the_gradient_clamp_and_zero(bce_limit):
    # the loss value is exact down to -100; the gradient fails far earlier
    assert -40.0 < bce_limit < -10.0


@pytest.mark.parametrize("offset", [0.0, 0.1, -0.2])
def test_bce_check_accepts_the_finding(bce_limit, offset):
    assert inv.check_bce_gradient_limit(bce_limit + offset)


def test_bce_check_accepts_a_one_element_tensor(bce_limit):
    assert inv.check_bce_gradient_limit(torch.tensor(bce_limit))


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (-100.0, "saturates"),  # where the loss value saturates
        (-103.3, "saturates"),  # where sigmoid underflows to 0 in float32
        (-88.0, "further from 0"),  # where sigmoid becomes subnormal
        (0.0, "below"),  # "it is always right" read the wrong way round
        (-10.0, "closer to 0"),  # an eyeballed value
        (float("nan"), "finite"),
        ("about -27", "one number"),
        ([-27.6], "one number"),
    ],
)
def test_bce_check_refuses_wrong_findings(wrong, hint, capsys):
    result = inv.check_bce_gradient_limit(wrong)
    assert not result
    assert hint in result.message
    assert "✗ gradient_limit" in capsys.readouterr().out


def test_adam_limit_is_where_eps_meets_the_gradients(adam_limit):
    assert 4 <= adam_limit <= 10


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_adam_check_accepts_the_finding(adam_limit, offset):
    assert inv.check_adam_scale_limit(adam_limit + offset, seed=0)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (0, "barely moves"),  # "every scale changes Adam's run", as with SGD
        (1, "barely moves"),
        (13, "eps"),  # "Adam is invariant to every scale"
        (2.5, "whole number"),
        (-3, "whole number"),
        (True, "one number"),
    ],
)
def test_adam_check_refuses_wrong_findings(wrong, hint):
    result = inv.check_adam_scale_limit(wrong, seed=0)
    assert not result
    assert hint in result.message


def test_adam_check_refuses_a_finding_two_decades_off(adam_limit):
    result = inv.check_adam_scale_limit(adam_limit + 3, seed=0)
    assert not result
    assert "smaller k" in result.message
    result = inv.check_adam_scale_limit(adam_limit - 2, seed=0)
    assert not result
