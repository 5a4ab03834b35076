"""The investigation exercise of the part "Combining losses": right answer in, wrong ones out."""

from __future__ import annotations

import math

import pytest
import torch

from multiloss_helpers.exercises import investigations_combining as inv


@pytest.fixture(scope="module")
def slowdown() -> float:
    fast, slow = inv._loss2_growths()
    return fast / slow


def test_reference_experiment_still_grows_at_the_small_alpha(slowdown):
    fast, slow = inv._loss2_growths()
    assert fast > slow > 0
    assert 1.5 < slowdown < 100  # slower, far from proportional to alpha (1000x)


@pytest.mark.parametrize("factor", [1.0, 0.95, 1.05])
def test_right_answer_passes(slowdown, factor, capsys):
    result = inv.check_unbounded_slowdown(slowdown * factor)
    assert result and result.passed
    assert capsys.readouterr().out.startswith("✓ unbounded_slowdown")


def test_tensor_answer_passes(slowdown):
    assert inv.check_unbounded_slowdown(torch.tensor(slowdown))


def _ratio_at_alpha_0_01() -> float:
    fast, slow = inv._loss2_growths((1.0, 0.01))
    return fast / slow


WRONG = {
    "upside down": lambda s: 1 / s,
    "proportional to alpha": lambda s: 1000.0,
    "no slowdown at all": lambda s: 1.0,
    "the chapter's alpha = 0.01": lambda s: _ratio_at_alpha_0_01(),
    "it stops growing": lambda s: 0.0,
    "off by a third": lambda s: 1.33 * s,
}


@pytest.mark.parametrize("name", list(WRONG))
def test_wrong_answers_fail(slowdown, name, capsys):
    result = inv.check_unbounded_slowdown(WRONG[name](slowdown))
    assert not result
    assert capsys.readouterr().out.startswith("✗ unbounded_slowdown")


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ("3.4", "as a number"),
        (math.nan, "positive number"),
        (True, "as a number"),
        (-2.0, "positive"),
    ],
)
def test_malformed_answers_fail_with_a_hint(answer, match):
    result = inv.check_unbounded_slowdown(answer)
    assert not result and match in result.message


def test_upside_down_hint_names_the_mistake(slowdown):
    assert "upside down" in inv.check_unbounded_slowdown(1 / slowdown).message


def test_check_leaves_the_global_random_state_alone(slowdown):
    inv._loss2_growths.cache_clear()
    state = torch.random.get_rng_state()
    inv.check_unbounded_slowdown(slowdown)
    assert torch.equal(state, torch.random.get_rng_state())
