"""The table every chapter's test file fills, and the three tests each table gets.

A chapter's test file ``test_chNN.py`` (``test_appendix.py`` for the appendix) holds
``CASES``, a list of rows, and binds the tests with
``test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)``:

- :func:`right` and :func:`wrong` give a check that takes the student's function an answer;
  :func:`stub` gives it an untouched stub, whose ``NotImplementedError`` must stop the check
  as one short :class:`ExerciseNotDone` line (so that a student notebook stops at the
  first exercise that is not done yet, without a traceback through the checker);
- :func:`finding` gives an investigation check (which takes a measured finding, and the
  set-up it was measured on) its arguments; its stub row hands in the stub function itself
  instead of a finding, which must fail with a hint, not crash and not pass.

A right answer must pass and print a ``✓`` verdict; a wrong one must fail, print a ``✗``
verdict and say its hint (a stable part of the message, with none of ``GIVEAWAYS``: words
that would spell out the solution). Every row also checks that the functions an exercise
forbids are back in place afterwards. ``tests/exercises/test_guards.py`` reads every table
and fails when a public check lacks a right answer, three wrong answers or a stub.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.distributions
import torch.distributions.kl
import torch.nn.functional as F

import multiloss_helpers as mlh
from multiloss_helpers.exercises._harness import ExerciseNotDone

RIGHT, WRONG, STUB = "right", "wrong", "stub"

#: The namespaces whose functions an exercise may forbid (replace while the answer runs).
FORBIDDEN_HOMES = (
    mlh,
    F,
    torch,
    torch.autograd,
    torch.distributions,
    torch.distributions.kl,
    torch.Tensor,
)


def stub_answer(*args: Any, **kwargs: Any) -> Any:
    """An exercise stub as a student receives it."""
    raise NotImplementedError("exercise")


@dataclass(frozen=True)
class Case:
    """One row of a chapter's table.

    Attributes:
        check: the check's name in ``mlh.exercises``.
        kind: ``RIGHT``, ``WRONG`` or ``STUB``.
        call: runs the check (given as its argument) on this row's answer.
        hint: what the failing verdict must say (a wrong answer, an investigation's stub).
        label: the row's name in the test id.
    """

    check: str
    kind: str
    call: Callable[[Callable[..., Any]], Any]
    hint: str = ""
    label: str = ""


def two_losses(model: Any, batch: dict[str, Any]) -> tuple[Any, Any]:
    """Cross-entropy and MSE of the harness's two-head model on ``batch`` (answers build on it)."""
    out = model(batch["x"])
    return F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"])


def right(check: str, answer: Any, label: str = "") -> Case:
    """A right answer to a check that takes the student's function."""
    return Case(check, RIGHT, lambda run: run(answer), label=label)


def wrong(check: str, answer: Any, hint: str, label: str = "") -> Case:
    """A typical wrong answer, and a stable part of the hint it must get."""
    return Case(check, WRONG, lambda run: run(answer), hint, label)


def stub(check: str) -> Case:
    """The untouched stub of a check that takes the student's function."""
    return Case(check, STUB, lambda run: run(stub_answer))


def finding(
    check: str,
    call: Callable[[Callable[..., Any]], Any],
    hint: str = "",
    *,
    label: str,
    kind: str | None = None,
) -> Case:
    """A row of an investigation check: ``call(check)`` passes it a finding and its set-up.

    Without ``hint`` the finding is right; with one it is wrong (or, with ``kind=STUB``, the
    stub handed in where the finding belongs) and must get that hint.
    """
    return Case(check, kind or (WRONG if hint else RIGHT), call, hint, label)


def _left_forbidden() -> list[str]:
    """The functions that a check's ``forbid`` replaced and did not put back."""
    return [
        f"{getattr(home, '__name__', home)}.{name}"
        for home in FORBIDDEN_HOMES
        for name, value in vars(home).items()
        if isinstance(value, types.FunctionType) and "forbid.<locals>" in value.__qualname__
    ]


def _run(case: Case) -> Any:
    """Run ``case``; assert that every function the check forbade is back in place."""
    try:
        return case.call(getattr(mlh.exercises, case.check))
    finally:
        left = _left_forbidden()
        assert not left, f"{case.check} left {left} replaced"


def _ids(cases: Sequence[Case]) -> list[str]:
    """``<check>-<label>`` (pytest numbers the ids that repeat)."""
    return [f"{case.check.removeprefix('check_')}-{case.label or case.kind}" for case in cases]


def _expect_verdict(result: Any, out: str, passed: bool) -> None:
    assert bool(result) is passed and result.passed is passed, out
    assert out == f"{'✓' if passed else '✗'} {result.name}: {result.message}\n", out


def table_tests(cases: Sequence[Case], giveaways: Sequence[str] = ()) -> tuple[Any, Any, Any]:
    """The right-answer, wrong-answer and stub tests for the rows of ``cases``."""
    by_kind = {kind: [c for c in cases if c.kind == kind] for kind in (RIGHT, WRONG, STUB)}

    @pytest.mark.parametrize("case", by_kind[RIGHT], ids=_ids(by_kind[RIGHT]))
    def test_right_answer_passes(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
        result = _run(case)
        _expect_verdict(result, capsys.readouterr().out, passed=True)

    @pytest.mark.parametrize("case", by_kind[WRONG], ids=_ids(by_kind[WRONG]))
    def test_wrong_answer_fails_with_its_hint(
        case: Case, capsys: pytest.CaptureFixture[str]
    ) -> None:
        result = _run(case)
        _expect_verdict(result, capsys.readouterr().out, passed=False)
        assert case.hint in result.message, f"hint {case.hint!r} not in {result.message!r}"
        shown = [word for word in giveaways if word in result.message]
        assert not shown, f"the hint gives the solution away ({shown}): {result.message!r}"

    @pytest.mark.parametrize("case", by_kind[STUB], ids=_ids(by_kind[STUB]))
    def test_unfinished_stub_stops_or_is_refused(
        case: Case, capsys: pytest.CaptureFixture[str]
    ) -> None:
        if not case.hint:  # a check of a function: the stub stops it, in one short line
            with pytest.raises(NotImplementedError) as stopped:
                _run(case)
            assert isinstance(stopped.value, ExerciseNotDone)
            assert stopped.value.__cause__ is None and stopped.value.__suppress_context__
            (line,) = stopped.value._render_traceback_()
            assert "not done yet" in line and len(line) < 160, line
            return
        result = _run(case)  # an investigation: the stub is no finding
        _expect_verdict(result, capsys.readouterr().out, passed=False)
        assert case.hint in result.message, f"hint {case.hint!r} not in {result.message!r}"

    return (
        test_right_answer_passes,
        test_wrong_answer_fails_with_its_hint,
        test_unfinished_stub_stops_or_is_refused,
    )
