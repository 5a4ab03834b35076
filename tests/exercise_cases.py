"""The three tests every table of exercise cases gets: a right answer passes, each typical
wrong answer fails with its hint, and an unfinished stub stops the notebook.

A test module holds ``CASES = {check_name: (right_answer, [(wrong_answer, hint), ...])}``
and binds the tests with ``test_right, test_wrong, test_stub = case_tests(CASES)``.
"""

from __future__ import annotations

from typing import Any

import pytest

import multiloss_helpers as mlh


def case_tests(cases: dict[str, tuple[Any, list[tuple[Any, str]]]]) -> tuple[Any, Any, Any]:
    """The right-answer, wrong-answer and stub tests for ``cases``, parametrized."""
    ex = mlh.exercises
    wrong = [(name, i) for name, (_, bad) in sorted(cases.items()) for i in range(len(bad))]

    @pytest.mark.parametrize("name", sorted(cases))
    def test_check_passes_a_right_answer(name, capsys):
        good, _ = cases[name]
        result = getattr(ex, name)(good)
        out = capsys.readouterr().out
        assert result and result.passed, out
        assert out.startswith("✓")

    @pytest.mark.parametrize(("name", "which"), wrong, ids=[f"{n}-{i}" for n, i in wrong])
    def test_check_fails_a_typical_wrong_answer_with_a_hint(name, which, capsys):
        bad, hint = cases[name][1][which]
        result = getattr(ex, name)(bad)
        out = capsys.readouterr().out
        assert not result and out.startswith("✗"), out
        assert hint in result.message, f"{name}: hint {hint!r} not in {result.message!r}"

    @pytest.mark.parametrize("name", sorted(cases))
    def test_unfinished_stub_stops_with_not_implemented(name):
        def stub(*args, **kwargs):
            raise NotImplementedError("exercise")

        with pytest.raises(NotImplementedError):
            getattr(ex, name)(stub)

    return (
        test_check_passes_a_right_answer,
        test_check_fails_a_typical_wrong_answer_with_a_hint,
        test_unfinished_stub_stops_with_not_implemented,
    )
