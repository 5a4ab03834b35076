r"""Checks for the exercises of the Beyond fixed weights part (chapters 10 and 11)."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    grads_of,
    package,
    run_check,
    two_loss_setup,
)

__all__ = [
    "check_autocast_losses",
    "check_gradient_scale",
    "check_pcgrad_two",
    "check_shard",
    "check_uncertainty_total",
]


# -------------------------------------------------------------------- chapter 10
def _pcgrad_reference(g1: Tensor, g2: Tensor) -> Tensor:
    dot = g1 @ g2
    if dot >= 0:
        return g1 + g2
    return (g1 - dot / (g2 @ g2) * g2) + (g2 - dot / (g1 @ g1) * g1)


def check_pcgrad_two(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(g1, g2)``: PCGrad for two tasks, each gradient projected on the normal plane of
    the *other original* one when they conflict; without ``mlh.pcgrad``.

    Checked with and without conflict, with orthogonal, opposite and random gradients.
    """

    def trials() -> None:
        mlh = package()
        g = gen(12)
        cases = [
            ("conflicting", torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])),
            ("not conflicting", torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0])),
            ("orthogonal", torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])),
            ("opposite", torch.tensor([1.0, -2.0, 0.5]), torch.tensor([-2.0, 4.0, -1.0])),
            ("conflicting, unequal norms", torch.tensor([3.0, 1.0]), torch.tensor([-1.0, 2.0])),
            ("random", torch.randn(20, generator=g), torch.randn(20, generator=g)),
        ]
        for where, g1, g2 in cases:
            want = _pcgrad_reference(g1, g2)
            with forbid((mlh, "pcgrad")):
                got = fn(g1.clone(), g2.clone())
            hint = f"for {where} gradients"
            if where in ("not conflicting", "orthogonal"):
                hint += " (without a conflict, what does PCGrad change?)"
            elif where.startswith("conflicting"):
                hint += " (is each one projected against the other's original gradient?)"
            expect_close(got, want, hint, rtol=1e-4)

    return run_check("pcgrad_two", fn, trials, "matches PCGrad with and without conflict")


def check_uncertainty_total(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(losses, log_vars)`` is Kendall et al.'s total ``sum 0.5 exp(-s) L + 0.5 s``,
    differentiable in both the losses and the log-variances ``s``.

    The gradient with respect to ``s`` must be right: with detached log-variances, ``s`` never
    learns. ``mlh.UncertaintyWeighting`` is not allowed.
    """

    def trials() -> None:
        mlh = package()
        for values, s_values in (([0.5, 2.0, 4.0], [0.0, 1.0, -0.5]), ([3.0, 0.1], [2.0, -3.0])):
            losses = torch.tensor(values, requires_grad=True)
            log_vars = torch.tensor(s_values, requires_grad=True)
            s, L = log_vars.detach(), losses.detach()
            want = (0.5 * torch.exp(-s) * L + 0.5 * s).sum()
            with forbid((mlh, "UncertaintyWeighting")):
                got = fn(losses, log_vars)
            expect_close(
                got,
                want,
                f"for losses {values} and log-variances {s_values} the total "
                "(each task contributes a weighted loss and a regulariser)",
            )
            expect_grads(
                got,
                [losses, log_vars],
                [0.5 * torch.exp(-s), 0.5 - 0.5 * torch.exp(-s) * L],
                "your total",
            )

    return run_check(
        "uncertainty_total", fn, trials, "total and gradients in losses and log-variances right"
    )


# -------------------------------------------------------------------- chapter 11
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


# ------------------------------------------------------ investigation, chapter 10
def _trunk_norm_ratio(model: nn.Module, batch: dict[str, Tensor], scale: float) -> float:
    """||grad of the scaled-target MSE|| / ||grad of the CE|| on the shared parameters."""
    out = model(batch["x"])
    losses = [
        F.cross_entropy(out["cls"], batch["y_cls"]),
        F.mse_loss(out["reg"], scale * batch["y_reg"]),
    ]
    shared = list(cast(Any, model).shared_parameters())
    norms = [
        torch.cat([g.flatten() for g in torch.autograd.grad(loss, shared, retain_graph=True)])
        .double()
        .norm()
        for loss in losses
    ]
    return float(norms[1] / norms[0])


def check_gradient_scale(
    ratios: object, model: nn.Module, batch: dict[str, Tensor], *, rtol: float = 0.02
) -> CheckResult:
    r"""Investigation: ``ratios`` maps each target scale ``k`` you tried (at least 1, 3,
    10 and 30) to the ratio of the regression loss's gradient norm to the classification
    loss's, on ``model``'s shared parameters, for ``batch`` with the regression target
    multiplied by ``k``.

    The check recomputes each ratio on the same model and batch (within ``rtol``) and
    checks that it grows with ``k``.
    """

    def trials() -> None:
        expect(
            isinstance(ratios, dict) and {1, 3, 10, 30} <= set(ratios),
            "report a dict {k: ratio} for at least k = 1, 3, 10 and 30, "
            f"got {describe(ratios)}"
            + (f" with keys {sorted(ratios)}" if isinstance(ratios, dict) else ""),
        )
        found = cast("dict[Any, Any]", ratios)
        for k in sorted(found):
            got = found[k]
            expect(
                isinstance(got, (int, float)) and got > 0,
                f"the ratio for k={k} should be a positive number, got {got!r}",
            )
            want = _trunk_norm_ratio(model, batch, float(k))
            expect(
                abs(float(got) - want) <= rtol * want,
                f"for k={k} your ratio {float(got):.4g} is off: divide the regression "
                "gradient's norm by the classification gradient's, on the shared "
                "parameters only, with the target (not the prediction) scaled",
            )
        values = [float(found[k]) for k in sorted(found)]
        expect(
            all(a < b for a, b in itertools.pairwise(values)),
            "your ratios should grow with k",
        )

    return run_check(
        "gradient_scale",
        lambda: ratios,
        trials,
        "the trunk's gradient ratio grows with the target's scale, as measured",
    )
