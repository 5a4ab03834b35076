r"""Checks for the exercises of the appendix, *Pitfalls*."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from ._harness import CheckResult, describe, expect, expect_close, expect_grads, gen, run_check

__all__ = [
    "check_regression_loss",
    "check_stack_losses",
]


def check_stack_losses(fn: Callable[[list[Tensor]], Tensor]) -> CheckResult:
    r"""``fn(losses)`` returns a 1-D tensor of the scalar losses that keeps every graph."""

    def trials() -> None:
        g = gen(13)
        leaves = [torch.randn(4, generator=g, requires_grad=True) for _ in range(3)]
        losses = [(leaves[0] ** 2).sum(), leaves[1].sum(), leaves[2].mean()]
        got = fn(list(losses))
        expect(
            isinstance(got, Tensor) and got.shape == (3,),
            f"expected shape (3,), got {describe(got)}",
        )
        expect_close(got, torch.stack([loss.detach() for loss in losses]), "the stacked values")
        expect(got.requires_grad, "the graph is cut: torch.tensor([...]) copies the values")
        want = [2 * leaves[0].detach(), torch.ones(4), torch.full((4,), 0.25)]
        expect_grads(got, leaves, want, "your stacked losses")

    return run_check("stack_losses", fn, trials, "a 1-D tensor of losses with their graphs")


def check_regression_loss(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(prediction, target)``: the MSE of an (N, 1) prediction and an (N,) target, entry
    by entry, with no broadcasting warning (N = 1 included)."""

    def trials() -> None:
        g = gen(14)
        for n in (6, 1):
            prediction = torch.randn(n, 1, generator=g, requires_grad=True)
            target = torch.randn(n, generator=g)
            diff = prediction.detach().squeeze(1) - target
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                got = fn(prediction, target)
            expect(
                not caught,
                f"with N={n} your loss warns: {caught[0].message if caught else ''}",
            )
            expect_close(
                got,
                (diff**2).mean(),
                f"with N={n}, the mean squared error between matching entries",
            )
            want = (2 * diff / n).unsqueeze(1)
            expect_grads(got, [prediction], [want], f"your loss with N={n}")

    return run_check("regression_loss", fn, trials, "no broadcasting, the right mean squared error")
