r"""Checks for the exercises of the appendix on pitfalls."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    gen,
    run_check,
)

__all__ = [
    "check_regression_loss",
    "check_stack_losses",
]


# --------------------------------------------------------------------- appendix
def check_stack_losses(fn: Callable[[list[Tensor]], Tensor]) -> CheckResult:
    """``fn(losses)`` returns a 1-D tensor of the losses that keeps their graphs."""

    def trials() -> None:
        w = torch.randn(4, requires_grad=True)
        losses = [(w**2).sum(), w.sum(), w.mean()]
        got = fn(losses)
        expect(
            isinstance(got, Tensor) and got.shape == (3,),
            f"expected shape (3,), got {describe(got)}",
        )
        expect(got.requires_grad, "the graph is cut: torch.tensor([...]) copies the values")
        (grad,) = torch.autograd.grad(got.sum(), w, retain_graph=True)
        (want,) = torch.autograd.grad(sum(losses), w)
        expect(close(grad, want), "the stacked losses do not carry the right gradients")

    return run_check("stack_losses", fn, trials, "a 1-D tensor of losses with their graphs")


def check_regression_loss(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(prediction, target)``: the MSE of an (N, 1) prediction and an (N,) target."""

    def trials() -> None:
        g = gen(14)
        prediction, target = torch.randn(6, 1, generator=g), torch.randn(6, generator=g)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = fn(prediction, target)
        want = F.mse_loss(prediction.squeeze(1), target)
        expect(not caught, f"your loss warns: {caught[0].message if caught else ''}")
        expect(close(got, want), "the value is not the mean squared error between matching entries")

    return run_check("regression_loss", fn, trials, "no broadcasting, the right mean squared error")
