r"""The machinery every exercise check shares: running an answer, hints, and strict probes.

A check is a function ``check_<name>(fn) -> CheckResult`` in the module of its chapter,
``chNN_<topic>.py`` (``appendix_<topic>.py`` for an appendix). It defines ``trials()``, a
function that calls the student's ``fn`` and raises :class:`Hint` (through :func:`expect`)
at the first thing that is wrong, and hands it to :func:`run_check`, which prints the
one-line verdict and returns a :class:`CheckResult`. An investigation check takes a
measured finding instead of a function and hands its trials to :func:`verdict`.

The probes below make a check strict:

- :func:`forbid` replaces the functions an exercise forbids while the answer runs, so that
  calling one fails the check with a hint that names it (:func:`public` names a public
  ``mlh.<name>``);
- :func:`count_backward` counts the backward passes an answer runs;
- :func:`grads_of` and :func:`expect_grads` compare gradients (finite, right, and reaching
  the inputs, so that answers computed under ``no_grad`` or on detached tensors fail);
- :func:`expect_close` compares values with a hint on failure; :func:`plain`,
  :func:`is_number`, :func:`one_number` and :func:`expect_number` read a reported finding
  as one number and compare it with the check's own measurement (investigation exercises);
- :func:`two_loss_setup`, :func:`task_losses` and :func:`leaf_grads` build the inputs that
  checks of several chapters share.

Hints say *what* is wrong (which input, which property), never the solution.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn

from ..models import MultiHeadNet

__all__ = [
    "CheckResult",
    "ExerciseNotDone",
    "Hint",
    "close",
    "count_backward",
    "describe",
    "expect",
    "expect_close",
    "expect_grads",
    "expect_number",
    "forbid",
    "gen",
    "grads_of",
    "is_number",
    "leaf_grads",
    "one_number",
    "plain",
    "public",
    "reduction_hint",
    "run_check",
    "task_losses",
    "two_loss_setup",
    "verdict",
]


@dataclass(frozen=True)
class CheckResult:
    r"""The verdict of a check: truthy when the answer passed.

    Args:
        name (str): the exercise's name, as printed in the verdict.
        passed (bool): whether every trial of the check passed.
        message (str): the success line, or the hint that says what is wrong.
    """

    name: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed


class Hint(Exception):
    r"""A failed expectation, with a hint that does not give the answer away."""


def expect(condition: bool, hint: str) -> None:
    r"""Raise :class:`Hint` with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise Hint(hint)


def gen(seed: int = 0) -> torch.Generator:
    r"""A CPU generator seeded with ``seed``: checks never touch the global random state."""
    return torch.Generator().manual_seed(seed)


def describe(value: Any) -> str:
    r"""A short description of ``value`` for hints: dtype and shape for tensors, else the type."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def close(a: Any, b: Tensor, *, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    r"""Whether ``a`` is a tensor of ``b``'s shape with values close to ``b``'s."""
    if not isinstance(a, Tensor) or a.shape != b.shape:
        return False
    return bool(torch.allclose(a.detach().to(b.dtype), b, rtol=rtol, atol=atol))


def _reductions(elements: Tensor) -> dict[str, Tensor]:
    """The usual reductions of per-element values, by the name a hint gives them."""
    values = elements.detach()
    reduced = {"sum": values.sum(), "mean": values.mean()}
    if values.dim() > 1:  # KL's "batchmean": the sum divided by the batch size
        reduced["sum divided by the batch size"] = values.sum() / values.shape[0]
    return reduced


def reduction_hint(got: Any, want: Tensor, elements: Tensor, *, rtol: float = 1e-4) -> str:
    r"""What is wrong with the reduction of ``got``, or ``""`` when nothing points to it.

    ``want`` is the right value and ``elements`` the per-element values it reduces (a loss
    per element or per task). A scalar ``got`` equal to another reduction of ``elements``
    than ``want`` is named as such; a ``got`` of ``elements``' shape where one number is
    expected is not reduced at all.

    Example:
        >>> losses = torch.tensor([1.0, 2.0, 3.0])
        >>> reduction_hint(losses.sum(), losses.mean(), losses)
        'your value is the sum, not the mean, of the per-element values'
        >>> reduction_hint(losses, losses.mean(), losses)
        'your value is not reduced (one value per element): the mean of them is asked'
    """
    if not isinstance(got, Tensor) or elements.numel() < 2:
        return ""
    named = _reductions(elements)
    mine = got.detach().reshape(()) if got.numel() == 1 else None
    if want.shape == elements.shape:  # reduction "none"
        found = [n for n, v in named.items() if mine is not None and close(mine, v, rtol=rtol)]
        return (
            f"your value is the {found[0]} of the values: one per element is asked" if found else ""
        )
    if want.numel() != 1:
        return ""
    right = want.detach().reshape(())
    wanted = next((n for n, v in named.items() if close(right, v, rtol=rtol)), "")
    if not wanted:
        return ""
    if got.shape == elements.shape:
        return f"your value is not reduced (one value per element): the {wanted} of them is asked"
    for name, value in named.items():
        if (
            mine is not None
            and not close(right, value, rtol=rtol)
            and close(mine, value, rtol=rtol)
        ):
            return f"your value is the {name}, not the {wanted}, of the per-element values"
    return ""


def expect_close(
    got: Any,
    want: Tensor,
    hint: str,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    elements: Tensor | None = None,
) -> None:
    r"""Raise :class:`Hint` unless ``got`` is a tensor of ``want``'s shape, finite where
    ``want`` is finite, and close to ``want``; ``hint`` says which input failed.

    With ``elements``, the per-element values that ``want`` reduces, a wrong reduction gets
    a hint naming it (:func:`reduction_hint`): the sum for the mean, and so on."""
    expect(isinstance(got, Tensor), f"{hint}: expected {describe(want)}, got {describe(got)}")
    if elements is not None:
        wrong_reduction = reduction_hint(got, want, elements)
        expect(not wrong_reduction, f"{hint}: {wrong_reduction}")
    expect(
        got.shape == want.shape,
        f"{hint}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}",
    )
    finite = torch.isfinite(want)
    expect(
        bool(torch.isfinite(got.detach())[finite].all()),
        f"{hint}: your value is not finite (NaN or inf) where the right one is",
    )
    expect(close(got, want, rtol=rtol, atol=atol), f"{hint}: your value is wrong")


def plain(value: Any) -> Any:
    r"""A one-element tensor as the Python number it holds (``.item()``); anything else as it is."""
    return value.item() if isinstance(value, Tensor) and value.numel() == 1 else value


def is_number(value: Any) -> bool:
    r"""Whether ``value`` is a real Python number: an ``int`` or a ``float``, not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def one_number(finding: Any, name: str) -> float:
    r"""``finding`` as a float; :class:`Hint` saying that ``name`` should be one finite number
    unless it is a real Python number or a one-element tensor holding one.

    Example:
        >>> one_number(torch.tensor(-27.5), "limit")
        -27.5
    """
    value = plain(finding)
    expect(is_number(value), f"`{name}` should be one number, got a {type(value).__name__}")
    expect(math.isfinite(value), f"`{name}` should be a finite number, got {value}")
    return float(value)


def expect_number(
    got: Any, want: float, hint: str, *, rel_tol: float = 0.0, abs_tol: float = 0.0
) -> float:
    r"""Raise :class:`Hint` unless ``got`` is a finite real number (a Python number or a
    one-element tensor) within ``rel_tol`` or ``abs_tol`` of ``want``; return it as a float.

    For investigation exercises: the learner runs an experiment and reports a number that
    the check compares with its own measurement, within a tolerance the spread supports.

    Example:
        >>> expect_number(torch.tensor([0.31]), 0.3, "the recall", abs_tol=0.02)
        0.31...
    """
    number = plain(got)
    expect(is_number(number), f"{hint}: report one number, got {describe(got)}")
    value = float(number)
    expect(math.isfinite(value), f"{hint}: your number is not finite ({value})")
    expect(
        math.isclose(value, want, rel_tol=rel_tol, abs_tol=abs_tol),
        f"{hint}: your number {value:.4g} is not what the experiment gives",
    )
    return value


def grads_of(output: Any, inputs: Sequence[Tensor], what: str) -> list[Tensor]:
    r"""The gradients of ``output`` (summed when it is not a scalar) with respect to ``inputs``.

    Raises :class:`Hint` when ``output`` has no graph (computed under ``torch.no_grad``, or
    from detached tensors or copied values) or when one of ``inputs`` cannot receive a
    gradient from it. ``what`` names the output in the hint.
    """
    expect(isinstance(output, Tensor), f"{what} should be a tensor, got {describe(output)}")
    expect(
        output.requires_grad,
        f"{what} has no graph, so no gradient can reach the inputs: was it computed under "
        "torch.no_grad(), from detached tensors, or by copying values into a new tensor?",
    )
    grads = torch.autograd.grad(output.sum(), list(inputs), allow_unused=True, retain_graph=True)
    expect(
        all(g is not None for g in grads),
        f"{what} has a graph, but it does not reach every input it depends on: is one of "
        "them detached, or copied with .item() or torch.tensor?",
    )
    return [g for g in grads if g is not None]


def expect_grads(
    output: Any,
    inputs: Sequence[Tensor],
    want: Sequence[Tensor],
    what: str,
    *,
    rtol: float = 1e-4,
    atol: float = 1e-6,
) -> None:
    r"""Raise :class:`Hint` unless the gradients of ``output`` reach ``inputs``, are finite,
    and equal ``want`` (one reference gradient per input)."""
    for got, ref in zip(grads_of(output, inputs, what), want):
        expect(
            bool(torch.isfinite(got).all()),
            f"{what} is finite, but its gradient is not (NaN or inf): an intermediate "
            "overflows, or is differentiated where its derivative is infinite",
        )
        expect(close(got, ref, rtol=rtol, atol=atol), f"the gradient of {what} is wrong")


class _Forbidden(BaseException):
    """Raised by a forbidden function: a BaseException, so an answer's `except` misses it."""


_SHORT = {
    "torch.nn.functional": "F",
    "multiloss_helpers": "mlh",
    "torch.autograd": "torch.autograd",
}


def _label(owner: Any, name: str) -> str:
    prefix = getattr(owner, "__name__", "")
    return f"{_SHORT.get(prefix, prefix)}.{name}" if prefix else name


@contextlib.contextmanager
def forbid(*targets: tuple[Any, str]) -> Iterator[None]:
    r"""Make ``getattr(owner, name)`` fail for each ``(owner, name)`` while the block runs.

    A call to a replaced function raises :class:`Hint` naming it when the block exits, so an
    answer that calls the function the exercise forbids fails the check, even if it catches
    exceptions itself. The originals are restored in every case.

    Example:
        >>> import torch.nn.functional as F
        >>> try:
        ...     with forbid((F, "mse_loss")):
        ...         F.mse_loss(torch.zeros(2), torch.ones(2))
        ... except Hint as hint:
        ...     print(hint)
        your function calls `F.mse_loss`, which this exercise does not allow
    """
    called: list[str] = []
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets if hasattr(owner, name)]

    def refuse(label: str) -> Callable[..., Any]:
        def fn(*args: Any, **kwargs: Any) -> Any:
            called.append(label)
            raise _Forbidden(label)

        return fn

    for owner, name, _ in saved:
        setattr(owner, name, refuse(_label(owner, name)))
    try:
        with contextlib.suppress(_Forbidden):
            yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    if called:
        raise Hint(f"your function calls `{called[0]}`, which this exercise does not allow")


@contextlib.contextmanager
def count_backward(tensors: Sequence[Tensor]) -> Iterator[list[int]]:
    r"""Count the backward passes that reach ``tensors`` while the block runs.

    Yields a list holding one counter; each backward pass that computes a gradient for the
    first tensor of ``tensors`` adds one (a hook on that tensor).
    """
    count = [0]

    def hook(grad: Tensor) -> Tensor:
        count[0] += 1
        return grad

    handle = tensors[0].register_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def public(name: str) -> tuple[ModuleType, str]:
    r"""The :func:`forbid` target for the public function ``mlh.<name>``.

    A student calls ``mlh.<name>``, so the attribute of the package root is what an
    exercise must replace; this is the one place where the exercises reach the root (it is
    imported at call time, once it is built).

    Example:
        >>> owner, name = public("focal_loss")
        >>> owner.__name__, name
        ('multiloss_helpers', 'focal_loss')
    """
    import multiloss_helpers

    return multiloss_helpers, name


def two_loss_setup(seed: int = 0, n: int = 32) -> tuple[nn.Module, dict[str, Tensor]]:
    r"""A two-head model (3-class ``cls``, 1-d ``reg``) and a batch of ``n`` samples for it."""
    g = gen(seed)
    model = MultiHeadNet(6, {"cls": 3, "reg": 1}, hidden=(16, 16), seed=seed)
    batch = {
        "x": torch.randn(n, 6, generator=g),
        "y_cls": torch.randint(3, (n,), generator=g),
        "y_reg": torch.randn(n, 1, generator=g),
    }
    return model, batch


def task_losses(names: tuple[str, ...], seed: int) -> tuple[dict[str, Tensor], list[Tensor]]:
    r"""One scalar loss per name, each built from its own leaf (so that each one's graph
    shows), and the leaves."""
    g = gen(seed)
    leaves = [torch.randn(4, generator=g, requires_grad=True) for _ in names]
    forms = (lambda w: (w**2).sum(), lambda w: 3 * w.sum(), lambda w: w.abs().mean())
    losses = {name: forms[i % 3](w) for i, (name, w) in enumerate(zip(names, leaves))}
    return losses, leaves


def leaf_grads(
    losses: dict[str, Tensor], leaves: list[Tensor], weights: dict[str, float]
) -> list[Tensor]:
    r"""The gradients of the ``weights``-weighted sum of ``losses`` with respect to ``leaves``."""
    total = torch.stack([weights[name] * loss for name, loss in losses.items()]).sum()
    return list(torch.autograd.grad(total, leaves, retain_graph=True))


class ExerciseNotDone(NotImplementedError):
    r"""An exercise whose answer is still the stub: one short line, not a traceback.

    IPython and Jupyter show an exception through its ``_render_traceback_`` when it has
    one, so the notebook stops at the check with this message alone.
    """

    __module__ = "multiloss_helpers.exercises"

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def _is_stub(error: NotImplementedError) -> bool:
    """Whether ``error`` comes from the answer's code, not from inside PyTorch."""
    frames = []
    tb = error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    return not frames or f"{os.sep}torch{os.sep}" not in frames[-1]


def _report(name: str, passed: bool, message: str) -> CheckResult:
    print(f"{'✓' if passed else '✗'} {name}: {message}")
    sys.stdout.flush()
    return CheckResult(name, passed, message)


def verdict(name: str, trials: Callable[[], None], success: str) -> CheckResult:
    r"""Run ``trials``, print the one-line verdict and return it.

    :class:`Hint` becomes a failed result with its hint. ``NotImplementedError`` raised by
    the answer's own code (an unfinished exercise stub) becomes :class:`ExerciseNotDone`,
    one short line, so a student notebook stops at the first exercise that is not done
    yet; raised inside PyTorch (an operation a device lacks), it is a failed result. Any
    other exception becomes a failed result whose message names it. Investigation checks,
    which take a finding rather than a function, call this directly.
    """
    try:
        trials()
    except NotImplementedError as error:
        if not _is_stub(error):
            return _report(name, False, f"your function raised NotImplementedError: {error}")
        raise ExerciseNotDone(
            f"{name} is not done yet: replace `raise NotImplementedError()` with your answer, "
            "then run this cell again"
        ) from None
    except Hint as hint:
        return _report(name, False, str(hint))
    except Exception as error:  # the student's code raised: report it as a hint
        return _report(name, False, f"your function raised {type(error).__name__}: {error}")
    return _report(name, True, success)


def run_check(name: str, fn: Any, trials: Callable[[], None], success: str) -> CheckResult:
    r"""Run ``trials`` on the student's function ``fn`` through :func:`verdict`; a ``fn``
    that is not callable fails at once."""
    if not callable(fn):
        return _report(name, False, f"`{name}` should be a function; got {describe(fn)}")
    return verdict(name, trials, success)
