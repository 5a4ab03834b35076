r"""Checks for the exercises of chapter 3, *Summing losses*."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    leaf_grads,
    run_check,
    task_losses,
)

__all__ = [
    "check_reached_parameters",
    "check_total_loss",
]


def check_total_loss(fn: Callable[[dict[str, Tensor]], Tensor]) -> CheckResult:
    r"""``fn({name: loss})`` sums the losses and keeps every loss's graph."""

    def trials() -> None:
        for names in (("a", "b", "c"), ("cls", "reg")):
            losses, leaves = task_losses(names, seed=len(names))
            each = torch.stack([loss.detach() for loss in losses.values()])
            want = each.sum()
            total = fn(dict(losses))
            expect(
                isinstance(total, Tensor) and total.numel() == 1,
                f"expected a scalar tensor, got {describe(total)}",
            )
            expect_close(
                total.reshape(()), want, f"for {len(names)} losses the total", elements=each
            )
            expect_grads(
                total,
                leaves,
                leaf_grads(losses, leaves, dict.fromkeys(names, 1.0)),
                "your total",
            )

    return run_check("total_loss", fn, trials, "sums the losses with every graph intact")


def _reach_model() -> nn.ModuleDict:
    torch.manual_seed(0)
    return nn.ModuleDict(
        {
            "trunk": nn.Linear(4, 8),
            "head_a": nn.Linear(8, 2),
            "head_b": nn.Linear(8, 1),
            "unused": nn.Linear(8, 3),
        }
    )


def _reach_losses(model: nn.ModuleDict, x: Tensor) -> dict[str, Tensor]:
    h = torch.relu(model["trunk"](x))
    return {
        "head a": model["head_a"](h).sum(),
        "head b": model["head_b"](h).pow(2).mean(),
        "both heads": model["head_a"](h).sum() + model["head_b"](h).sum(),
        "head a on detached features": model["head_a"](h.detach()).sum(),
    }


def check_reached_parameters(fn: Callable[[Tensor, nn.Module], set[str]]) -> CheckResult:
    r"""``fn(loss, model)``: the names of the parameters that ``loss`` can send a gradient to,
    found without ``backward()`` or ``torch.autograd.grad``.

    Checked on losses of one head, of both, and of a head on detached features.
    """

    def trials() -> None:
        model = _reach_model()
        params = dict(model.named_parameters())
        for where, loss in _reach_losses(model, torch.randn(3, 4, generator=gen(4))).items():
            grads = torch.autograd.grad(
                loss, list(params.values()), allow_unused=True, retain_graph=True
            )
            want = {name for name, g in zip(params, grads) if g is not None}
            with forbid(
                (torch.Tensor, "backward"),
                (torch.autograd, "grad"),
                (torch.autograd, "backward"),
            ):
                got = fn(loss, model)
            expect(
                isinstance(got, (set, list, tuple, frozenset)),
                f"return a set of names, got {describe(got)}",
            )
            missing, extra = sorted(want - set(got)), sorted(set(got) - want)
            expect(
                not missing and not extra,
                f"for the loss of {where}: missing {missing}, not reached but listed {extra}",
            )

    return run_check(
        "reached_parameters", fn, trials, "finds exactly the parameters each loss reaches"
    )
