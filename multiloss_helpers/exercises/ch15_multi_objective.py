r"""Checks for the exercises of chapter 15, *The multi-objective frame*."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..weighting.mgda import min_norm_weights
from ._harness import CheckResult, describe, expect, forbid, gen, public, run_check, verdict

__all__ = [
    "check_mgda_scale",
    "check_min_norm_two",
    "check_non_dominated",
]


def _min_norm_norm(g1: Tensor, g2: Tensor) -> float:
    """The smallest norm of a convex combination of two gradients, in float64."""
    a, b = g1.double(), g2.double()
    diff = a - b
    denom = float(diff @ diff)
    gamma = 0.5 if denom == 0.0 else min(max(float((b - a) @ b) / denom, 0.0), 1.0)
    return float((gamma * a + (1 - gamma) * b).norm())


def _min_norm_cases() -> list[tuple[str, Tensor, Tensor, bool]]:
    """(where, g1, g2, whether the right weights are unique)."""
    g = gen(15)
    random = [torch.randn(20, generator=g) for _ in range(4)]
    return [
        ("conflicting", torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0]), True),
        ("not conflicting", torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]), True),
        ("parallel (g2 = 2 g1)", torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]), True),
        ("parallel (g1 = 3 g2)", torch.tensor([3.0, -6.0]), torch.tensor([1.0, -2.0]), True),
        ("g1 zero", torch.zeros(3), torch.tensor([3.0, 4.0, 0.0]), True),
        ("g2 zero", torch.tensor([0.0, -1.0, 2.0]), torch.zeros(3), True),
        (
            "opposite (g2 = -2 g1)",
            torch.tensor([1.0, -2.0, 0.5]),
            torch.tensor([-2.0, 4.0, -1.0]),
            True,
        ),
        ("identical", torch.tensor([1.0, 1.0]), torch.tensor([1.0, 1.0]), False),
        ("both zero", torch.zeros(4), torch.zeros(4), False),
        ("random", random[0], random[1], True),
        ("random", random[2], random[3], True),
    ]


def _right_weights(g1: Tensor, g2: Tensor) -> Tensor:
    a, b = g1.double(), g2.double()
    diff = a - b
    gamma = min(max(float((b - a) @ b) / float(diff @ diff), 0.0), 1.0)
    return torch.tensor([gamma, 1 - gamma], dtype=torch.float64)


def check_min_norm_two(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(g1, g2)``: the weights ``(w1, w2)`` on the simplex (non-negative, summing to 1)
    that minimise :math:`\lVert w_1 g_1 + w_2 g_2 \rVert`, without ``mlh.min_norm_weights``,
    ``mlh.mgda`` or ``mlh.MGDA``.

    Checked on conflicting, non-conflicting, parallel, opposite and random gradients,
    with one or both gradients zero, and with identical gradients (where any weights on
    the simplex give the same direction, so only the norm is checked).
    """

    def trials() -> None:
        for where, g1, g2, unique in _min_norm_cases():
            with forbid(public("min_norm_weights"), public("mgda"), public("MGDA")):
                got = fn(g1.clone(), g2.clone())
            hint = f"for {where} gradients"
            expect(
                isinstance(got, Tensor) and got.shape == (2,),
                f"{hint}: return the two weights as a tensor of shape (2,), got "
                + (f"shape {tuple(got.shape)}" if isinstance(got, Tensor) else describe(got)),
            )
            w = got.detach().double()
            expect(
                bool(torch.isfinite(w).all()),
                f"{hint}: your weights are not finite (NaN or inf): does a division "
                "by zero happen for this pair?",
            )
            expect(
                bool((w >= -1e-6).all()) and abs(float(w.sum()) - 1) < 1e-5,
                f"{hint}: your weights {[round(v, 4) for v in w.tolist()]} are not on the "
                "simplex (non-negative, summing to 1)",
            )
            norm = float((w[0] * g1.double() + w[1] * g2.double()).norm())
            best = _min_norm_norm(g1, g2)
            flipped = float((w[1] * g1.double() + w[0] * g2.double()).norm())
            expect(
                norm <= best + 1e-5 * (1 + float(g1.norm() + g2.norm()))
                or flipped > best + 1e-5 * (1 + float(g1.norm() + g2.norm())),
                f"{hint}: your weights {[round(v, 4) for v in w.tolist()]} are not "
                "the minimisers (which weight belongs to which gradient?)",
            )
            expect(
                norm <= best + 1e-5 * (1 + float(g1.norm() + g2.norm())),
                f"{hint}: the combination of your weights has norm {norm:.4g}, but a "
                f"shorter one on the simplex exists ({best:.4g})",
            )
            if unique:
                want = _right_weights(g1, g2)
                expect(
                    bool(torch.allclose(w, want, rtol=1e-4, atol=1e-5)),
                    f"{hint}: your weights {[round(v, 4) for v in w.tolist()]} are not "
                    "the minimisers (which weight belongs to which gradient?)",
                )

    return run_check("min_norm_two", fn, trials, "the min-norm weights, edge cases included")


def _non_dominated(points: Tensor) -> Tensor:
    no_worse = (points[None, :, :] <= points[:, None, :]).all(dim=2)
    better = (points[None, :, :] < points[:, None, :]).any(dim=2)
    return ~(no_worse & better).any(dim=1)


def _front_cases() -> list[tuple[str, Tensor]]:
    g = gen(16)
    return [
        ("one dominated point", torch.tensor([[1.0, 3.0], [2.0, 2.0], [3.0, 3.0], [3.0, 1.0]])),
        ("duplicates on the front", torch.tensor([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0]])),
        ("a tie on one objective", torch.tensor([[1.0, 2.0], [1.0, 3.0], [0.5, 4.0]])),
        ("duplicates off the front", torch.tensor([[2.0, 2.0], [2.0, 2.0], [1.0, 1.0]])),
        ("a single point", torch.tensor([[0.3, -0.7]])),
        ("three objectives", torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 4.0], [0.0, 5.0, 5.0]])),
        ("random integer points (many ties)", torch.randint(0, 5, (40, 2), generator=g).float()),
        ("random points, three objectives", torch.randn(30, 3, generator=g)),
    ]


def check_non_dominated(fn: Callable[[Tensor], Tensor]) -> CheckResult:
    r"""``fn(points)``: a bool mask of the rows of an ``(N, K)`` tensor that no other row
    dominates, every objective minimised; without ``mlh.pareto_front``.

    Row ``b`` dominates row ``a`` when it is no worse on every objective and strictly
    better on at least one, so duplicates do not dominate each other. Checked on
    duplicates (on and off the front), ties on one objective, one point, three
    objectives and random points.
    """

    def trials() -> None:
        for where, points in _front_cases():
            want = _non_dominated(points)
            with forbid(public("pareto_front")):
                got = fn(points.clone())
            hint = f"for {where}"
            expect(
                isinstance(got, Tensor) and got.dtype == torch.bool,
                f"{hint}: return a bool tensor, got {describe(got)}",
            )
            expect(
                got.shape == want.shape,
                f"{hint}: return one entry per row, shape {tuple(want.shape)}, "
                f"got {tuple(got.shape)}",
            )
            wrong = (got != want).nonzero().flatten().tolist()
            if wrong:
                row = wrong[0]
                kept = "kept" if bool(got[row]) else "dropped"
                expect(
                    False,
                    f"{hint}: you {kept} row {row}, {points[row].tolist()} "
                    "(when does one row dominate another?)",
                )

    return run_check(
        "non_dominated", fn, trials, "the non-dominated rows, with duplicates and ties"
    )


# investigation: the learner reports a measured finding; the check reruns the experiment
def _mgda_cls_weight(model: nn.Module, batch: dict[str, Tensor], scale: float) -> float:
    """MGDA's weight on the CE, with the MSE multiplied by ``scale``, on the shared trunk."""
    out = model(batch["x"])
    losses = [
        F.cross_entropy(out["cls"], batch["y_cls"]),
        scale * F.mse_loss(out["reg"], batch["y_reg"]),
    ]
    shared = list(cast(Any, model).shared_parameters())
    rows = [
        torch.cat([g.flatten() for g in torch.autograd.grad(loss, shared, retain_graph=True)])
        for loss in losses
    ]
    return float(min_norm_weights(torch.stack(rows).double())[0])


def check_mgda_scale(
    weights: object, model: nn.Module, batch: dict[str, Tensor], *, atol: float = 0.01
) -> CheckResult:
    r"""Investigation: ``weights`` maps each factor ``k`` you tried (at least 0.001, 0.01,
    0.1 and 1) to MGDA's min-norm weight on the classification loss, computed from the two
    task gradients on ``model``'s shared parameters for ``batch``, with the regression
    loss multiplied by ``k``.

    The check recomputes each weight on the same model and batch (within ``atol``).
    """

    def trials() -> None:
        expect(
            isinstance(weights, dict) and {0.001, 0.01, 0.1, 1} <= set(weights),
            "report a dict {k: weight} for at least k = 0.001, 0.01, 0.1 and 1, "
            f"got {describe(weights)}"
            + (f" with keys {sorted(weights)}" if isinstance(weights, dict) else ""),
        )
        table: dict[Any, Any] = weights if isinstance(weights, dict) else {}
        for k in sorted(table):
            got = table[k]
            expect(
                isinstance(got, (int, float)) and 0 <= got <= 1,
                f"the weight for k={k} should be a number in [0, 1], got {got!r}",
            )
            want = _mgda_cls_weight(model, batch, float(k))
            expect(
                abs(float(got) - want) <= atol,
                f"for k={k} your weight {float(got):.4g} is off: the classification's "
                "min-norm weight, from the two gradients on the shared parameters only, "
                "with the regression loss (not its target or prediction) multiplied by k",
            )

    return verdict(
        "mgda_scale",
        trials,
        "MGDA's weights move with the scale of one loss, as measured",
    )
