r"""Checks for the exercises of chapter 11, *Scaling up: mixed precision and several processes*."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    grads_of,
    run_check,
    two_loss_setup,
)

__all__ = [
    "check_autocast_losses",
    "check_shard",
]


def check_shard(fn: Callable[[dict[str, Tensor], int, int], dict[str, Tensor]]) -> CheckResult:
    r"""``fn(data, rank, world_size)`` gives each rank a disjoint, equal share of a dict of
    tensors, all keys aligned sample by sample."""

    def trials() -> None:
        data = {"x": torch.arange(24).float().view(12, 2), "i": torch.arange(12)}
        for world in (1, 2, 3, 4):
            seen: list[int] = []
            for rank in range(world):
                part = fn({k: v.clone() for k, v in data.items()}, rank, world)
                expect(
                    isinstance(part, dict) and set(part) == set(data),
                    f"every shard needs every key of the data {sorted(data)}",
                )
                expect(
                    len(part["i"]) == 12 // world and len(part["x"]) == 12 // world,
                    f"with {world} ranks each shard should hold {12 // world} samples of every key",
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
    r"""``fn(model, batch)`` runs the model and both losses under bfloat16 autocast on the
    CPU, and returns the two losses, in float32, with their graphs to the parameters."""

    def trials() -> None:
        model, batch = two_loss_setup()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = fn(model, batch)
        expect(
            isinstance(got, tuple) and len(got) == 2,
            f"return the two losses as a pair, got {describe(got)}",
        )
        with torch.no_grad():
            out = model(batch["x"])
            want = (
                F.cross_entropy(out["cls"], batch["y_cls"]),
                F.mse_loss(out["reg"], batch["y_reg"]),
            )
        for name, a, b in zip(("cls", "reg"), got, want):
            expect(
                isinstance(a, Tensor) and a.dtype == torch.float32,
                f"the {name} loss should come out in float32, got {describe(a)}",
            )
            expect_close(a, b, f"the {name} loss, far from its float32 value", rtol=3e-2, atol=1e-3)
            expect(
                not close(a, b, rtol=1e-7, atol=0.0),
                f"the {name} loss equals the float32 value exactly: was autocast on?",
            )
            grads_of(a, list(model.parameters())[:1], f"your {name} loss")

    return run_check(
        "autocast_losses", fn, trials, "both losses in float32, computed under bfloat16 autocast"
    )
