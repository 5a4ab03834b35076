r"""Checks for the exercises of chapter 10, *Automatic loss weighting and gradient conflict*."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    public,
    run_check,
    verdict,
)

__all__ = [
    "check_gradient_scale",
    "check_pcgrad_two",
    "check_uncertainty_total",
]


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
            with forbid(public("pcgrad")):
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
        for values, s_values in (([0.5, 2.0, 4.0], [0.0, 1.0, -0.5]), ([3.0, 0.1], [2.0, -3.0])):
            losses = torch.tensor(values, requires_grad=True)
            log_vars = torch.tensor(s_values, requires_grad=True)
            s, L = log_vars.detach(), losses.detach()
            want = (0.5 * torch.exp(-s) * L + 0.5 * s).sum()
            with forbid(public("UncertaintyWeighting")):
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


# investigation: the learner reports a measured finding; the check reruns the experiment
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

    return verdict(
        "gradient_scale",
        trials,
        "the trunk's gradient ratio grows with the target's scale, as measured",
    )
