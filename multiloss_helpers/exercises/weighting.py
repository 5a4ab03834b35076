r"""Checks for the exercises of the Beyond fixed weights part (chapters 10 and 11)."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    close,
    expect,
    gen,
    package,
    run_check,
    two_loss_setup,
)

__all__ = [
    "check_autocast_losses",
    "check_pcgrad_two",
    "check_shard",
    "check_uncertainty_total",
]


# -------------------------------------------------------------------- chapter 10
def check_pcgrad_two(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(g1, g2)``: PCGrad for two tasks, projecting each gradient if they conflict."""

    def trials() -> None:
        cases = [
            (torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])),
            (torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0])),
            (torch.randn(20, generator=gen(12)), torch.randn(20, generator=gen(13))),
        ]
        for i, (g1, g2) in enumerate(cases):
            got = fn(g1, g2)
            want = package().pcgrad(torch.stack([g1, g2]))
            conflict = float(g1 @ g2) < 0
            expect(
                close(got, want, rtol=1e-4),
                f"case {i} ({'conflicting' if conflict else 'not conflicting'} gradients) is off"
                + ("" if conflict else ": without conflict PCGrad is the plain sum"),
            )

    return run_check("pcgrad_two", fn, trials, "matches PCGrad with and without conflict")


def check_uncertainty_total(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(losses, log_vars)`` is Kendall et al.'s total, sum 0.5 exp(-s) L + 0.5 s."""

    def trials() -> None:
        losses = torch.tensor([0.5, 2.0, 4.0])
        log_vars = torch.tensor([0.0, 1.0, -0.5], requires_grad=True)
        got = fn(losses, log_vars)
        want = (0.5 * torch.exp(-log_vars.detach()) * losses + 0.5 * log_vars.detach()).sum()
        expect(
            close(got, want),
            "the total is off: each task contributes a weighted loss and a regulariser",
        )
        expect(
            got.requires_grad, "the log-variances must receive gradients: keep them in the graph"
        )

    return run_check("uncertainty_total", fn, trials, "matches the uncertainty-weighted total")


# -------------------------------------------------------------------- chapter 11
def check_shard(fn: Callable[[dict[str, Tensor], int, int], dict[str, Tensor]]) -> CheckResult:
    """``fn(data, rank, world_size)`` gives each rank a disjoint, equal share, all keys aligned."""

    def trials() -> None:
        data = {"x": torch.arange(24).float().view(12, 2), "i": torch.arange(12)}
        for world in (2, 3):
            seen = []
            for rank in range(world):
                part = fn(data, rank, world)
                expect(set(part) == set(data), "every shard needs every key of the data")
                expect(
                    len(part["i"]) == 12 // world,
                    f"with {world} ranks each shard should hold {12 // world} samples",
                )
                expect(
                    close(part["x"], data["x"][part["i"]]),
                    "the keys of a shard are not aligned sample by sample",
                )
                seen += part["i"].tolist()
            expect(
                sorted(seen) == list(range(12)),
                f"with {world} ranks the shards overlap or miss samples",
            )

    return run_check("shard", fn, trials, "disjoint, equal, aligned shards")


def check_autocast_losses(
    fn: Callable[[nn.Module, dict[str, Tensor]], tuple[Tensor, Tensor]],
) -> CheckResult:
    """``fn(model, batch)`` computes both losses under bfloat16 autocast on the CPU."""

    def trials() -> None:
        model, batch = two_loss_setup()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = fn(model, batch)
        expect(isinstance(got, tuple) and len(got) == 2, "return the two losses as a pair")
        out = model(batch["x"])
        want = (F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"]))
        for name, a, b in zip(("cls", "reg"), got, want):
            expect(
                isinstance(a, Tensor) and a.dtype == torch.float32,
                f"the {name} loss should come out in float32",
            )
            expect(
                close(a, b.detach(), rtol=3e-2, atol=1e-3),
                f"the {name} loss is far from its float32 value",
            )
            expect(
                not close(a, b.detach(), rtol=1e-7, atol=0.0),
                f"the {name} loss equals the float32 value exactly: was autocast on?",
            )

    return run_check(
        "autocast_losses", fn, trials, "both losses in float32, computed under bfloat16 autocast"
    )
