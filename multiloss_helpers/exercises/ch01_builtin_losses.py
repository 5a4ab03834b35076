r"""Checks for the exercises of chapter 1, *Built-in losses and custom losses*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._harness import (
    CheckResult,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    one_number,
    run_check,
    verdict,
)

__all__ = [
    "check_bce_gradient_limit",
    "check_bce_with_logits",
    "check_mean_squared_error",
]


_BCE_FUNCTIONS = (
    (F, "binary_cross_entropy_with_logits"),
    (F, "binary_cross_entropy"),
    (torch, "binary_cross_entropy_with_logits"),
)


def check_mean_squared_error(fn: Callable[..., Tensor]) -> CheckResult:
    r"""``fn(input, target, *, reduction="mean")`` is the mean squared error, without
    ``F.mse_loss``.

    Checked for the reductions ``"mean"``, ``"sum"`` and ``"none"`` on inputs of several
    shapes: the values, and the gradients with respect to both ``input`` and ``target``.
    Calling ``F.mse_loss`` (or ``nn.MSELoss``) fails the check.
    """

    def trials() -> None:
        g = gen(1)
        for shape in ((7,), (4, 3), (2, 3, 5)):
            a = torch.randn(shape, generator=g, requires_grad=True)
            b = torch.randn(shape, generator=g, requires_grad=True)
            diff = (a - b).detach()
            for reduction in ("mean", "sum", "none"):
                scale = 1.0 / diff.numel() if reduction == "mean" else 1.0
                want = {"mean": (diff**2).mean(), "sum": (diff**2).sum(), "none": diff**2}
                with forbid((F, "mse_loss"), (torch, "mse_loss")):
                    got = fn(a, b, reduction=reduction)
                where = f"reduction={reduction!r} on inputs of shape {shape}"
                hint = where
                if reduction == "mean":
                    hint += " (what does 'mean' divide by?)"
                expect_close(got, want[reduction], hint, elements=diff**2)
                expect_grads(
                    got,
                    [a, b],
                    [2 * scale * diff, -2 * scale * diff],
                    f"your loss with {where}",
                )

    return run_check(
        "mean_squared_error", fn, trials, "values and gradients right for every reduction"
    )


def check_bce_with_logits(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(logits, target)`` is the mean binary cross-entropy on logits, without PyTorch's
    binary cross-entropy functions.

    Checked on moderate logits and at logits of +-20, +-200 and +-1e4: the value is finite
    and right, and so is the gradient with respect to the logits.
    """

    def trials() -> None:
        g = gen(2)
        moderate = 3 * torch.randn(50, generator=g)
        cases = [
            ("moderate logits", moderate, (torch.rand(50, generator=g) < 0.4).float()),
            (
                "logits of +-20, +-200 and +-1e4",
                torch.tensor([-20.0, 20.0, -200.0, 200.0, -1e4, 1e4, -1e4, 1e4]),
                torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0]),
            ),
        ]
        for where, logits, target in cases:
            want = F.binary_cross_entropy_with_logits(logits, target)
            logits = logits.clone().requires_grad_(True)
            with forbid(*_BCE_FUNCTIONS):
                got = fn(logits, target)
            elements = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
            expect_close(got, want, f"on {where}", rtol=1e-4, elements=elements.detach())
            want_grad = (torch.sigmoid(logits.detach()) - target) / len(target)
            expect_grads(got, [logits], [want_grad], f"your loss on {where}")

    return run_check(
        "bce_with_logits", fn, trials, "value and gradient right and finite up to logits of 1e4"
    )


# investigation: the learner reports a measured finding; the check reruns the experiment
def _bce_gradient_limit(step: float = 0.01, lowest: float = -100.0) -> float:
    r"""The most negative logit where the gradient of BCE through a sigmoid is still right.

    On a float32 grid of logits :math:`z` from 0 down to ``lowest`` in steps of ``step``,
    the gradient of ``F.binary_cross_entropy(torch.sigmoid(z), 1)`` with respect to
    :math:`z` is compared with the exact :math:`\sigma(z) - 1`; the result is the most
    negative :math:`z` at which it is within 1% of it.

    Args:
        step (float): the spacing of the grid. Default: ``0.01``.
        lowest (float): the end of the grid. Default: ``-100.0``.

    Example:
        >>> -30 < _bce_gradient_limit() < -20
        True
    """
    z = torch.arange(0.0, lowest, -step).requires_grad_()
    loss = F.binary_cross_entropy(torch.sigmoid(z), torch.ones_like(z), reduction="sum")
    (grad,) = torch.autograd.grad(loss, z)
    exact = torch.sigmoid(z.detach()) - 1
    within = (grad - exact).abs() <= 0.01 * exact.abs()
    return float(z.detach()[within].min())


def check_bce_gradient_limit(finding: Any, *, tolerance: float = 0.25) -> CheckResult:
    r"""Chapter 1's investigation: where the gradient of BCE through a sigmoid breaks.

    Args:
        finding: the learner's most negative logit with a gradient within 1% of exact.
        tolerance (float): the accepted distance to the rerun experiment. Default: ``0.25``.
    """
    name = "gradient_limit"

    def trials() -> None:
        value = one_number(finding, name)
        expect(value < 0, "the gradient is right at z = 0 and the limit lies below it")
        want = _bce_gradient_limit()
        expect(
            value >= -99.0,
            "that is where the loss *value* saturates; compare the gradient with "
            "sigmoid(z) - 1 itself, point by point",
        )
        where = "further from 0" if value < want else "closer to 0"
        expect(
            abs(value - want) <= tolerance,
            f"the rerun experiment puts the limit {where} than {value:g}: is the grid "
            "in float32, is the comparison relative (1% of |sigmoid(z) - 1|), and do "
            "you report the most negative logit that still passes?",
        )

    return verdict(name, trials, "matches the rerun experiment")
