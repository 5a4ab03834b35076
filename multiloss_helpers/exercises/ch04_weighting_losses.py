r"""Checks for the exercises of chapter 4, *Weighting losses*."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..data import make_multitask_data
from ..models import MultiHeadNet
from ._harness import (
    CheckResult,
    Hint,
    expect,
    expect_close,
    expect_grads,
    leaf_grads,
    one_number,
    run_check,
    task_losses,
    verdict,
)

__all__ = [
    "check_adam_scale_limit",
    "check_normalised_weights",
    "check_weighted_total",
]


def check_normalised_weights(fn: Callable[[dict[str, float]], dict[str, float]]) -> CheckResult:
    r"""``fn(initial_losses)`` returns ``1 / L_i(0)`` per task."""

    def trials() -> None:
        for initial in ({"cls": 1.1, "reg": 3141.7, "depth": 0.02}, {"only": 4.0}):
            got = fn(dict(initial))
            expect(
                isinstance(got, dict) and set(got) == set(initial),
                f"return a dict with the same task names {sorted(initial)}",
            )
            for name, value in initial.items():
                product = float(got[name]) * value
                expect(
                    math.isclose(product, 1.0, rel_tol=1e-6),
                    f"task {name!r}: weight times initial loss should be 1, got {product:.4g}",
                )

    return run_check("normalised_weights", fn, trials, "every task starts at a weighted loss of 1")


def _expect_name_error(fn: Callable[..., Tensor], losses: dict[str, Tensor], weights) -> None:
    """``fn(losses, weights)`` must raise a ValueError whose message names both sides."""
    only_losses = sorted(set(losses) - set(weights))
    only_weights = sorted(set(weights) - set(losses))
    case = f"losses {sorted(losses)} with weights {sorted(weights)}"
    try:
        fn(losses, weights)
    except ValueError as error:
        message = str(error)
        expect(
            all(name in message for name in only_losses + only_weights),
            f"for {case} you raise a ValueError, but its message ({message!r}) does not name "
            "the task names that differ",
        )
        return
    except Exception as error:
        raise Hint(
            f"for {case} you raise {type(error).__name__}; the exercise asks for a ValueError"
        ) from None
    raise Hint(f"for {case} nothing is raised: mismatched names should raise a ValueError")


def check_weighted_total(
    fn: Callable[[dict[str, Tensor], dict[str, float]], Tensor],
) -> CheckResult:
    r"""``fn(losses, weights)`` is the weighted sum with every graph kept, and a
    ``ValueError`` naming the differing task names when the two dictionaries differ."""

    def trials() -> None:
        names = ("depth", "segmentation", "normals")
        losses, leaves = task_losses(names, seed=5)
        weights = {"depth": 0.5, "segmentation": 2.0, "normals": 0.1}
        each = torch.stack([weights[n] * loss.detach() for n, loss in losses.items()])
        total = fn(dict(losses), dict(weights))
        expect_close(total, each.sum(), "the weighted sum", elements=each)
        expect_grads(total, leaves, leaf_grads(losses, leaves, weights), "your total")
        two = {n: losses[n] for n in names[:2]}
        _expect_name_error(fn, two, {"depth": 1.0, "surface": 1.0})
        _expect_name_error(fn, two, {"depth": 1.0})
        _expect_name_error(fn, two, {"depth": 1.0, "segmentation": 1.0, "edges": 1.0})

    return run_check(
        "weighted_total", fn, trials, "weighted sum with its graph, mismatched names refused"
    )


# investigation: the learner reports a measured finding; the check reruns the experiment
def _adam_run(data: dict[str, Tensor], scale: float, steps: int, seed: int) -> Tensor:
    net = MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(16,), seed=seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        out = net(data["x"])
        total = F.cross_entropy(out["cls"], data["y_cls"]) + F.mse_loss(out["reg"], data["y_reg"])
        (scale * total).backward()
        optimizer.step()
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def _adam_scale_limit(seed: int = 0, steps: int = 50) -> int:
    r"""The smallest ``k`` for which scaling the loss by ``10**-k`` visibly changes Adam's run.

    The protocol of chapter 4's investigation: ``mlh.make_multitask_data(256, n_features=8,
    seed=seed)``, ``mlh.MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(16,), seed=seed)``,
    ``Adam(lr=1e-2)``, ``steps`` full-batch steps on ``c * (cross_entropy + mse)``. For
    ``c = 10**-k``, ``k = 0, 1, ..., 12``, the deviation is the distance between the final
    parameters and those of the ``c = 1`` run, divided by the distance that run travelled
    from the initial parameters. The result is the smallest ``k`` whose deviation exceeds
    one half.

    Args:
        seed (int): the seed of the data and of the initial weights. Default: ``0``.
        steps (int): the number of Adam steps. Default: ``50``.
    """
    data = make_multitask_data(256, n_features=8, seed=seed)
    initial = MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(16,), seed=seed)
    start = torch.cat([p.detach().flatten() for p in initial.parameters()])
    reference = _adam_run(data, 1.0, steps, seed)
    travelled = (reference - start).norm()
    for k in range(1, 13):
        if (_adam_run(data, 10.0**-k, steps, seed) - reference).norm() > 0.5 * travelled:
            return k
    return 13


def check_adam_scale_limit(finding: Any, *, seed: int = 0) -> CheckResult:
    r"""Chapter 4's investigation: how small a loss scale Adam still ignores.

    Args:
        finding: the learner's smallest ``k`` for which the run with the loss scaled by
            ``10**-k`` deviates by more than half the distance the unscaled run travelled.
        seed (int): the seed the exercise's protocol uses. Default: ``0``.
    """
    name = "scale_limit"

    def trials() -> None:
        value = one_number(finding, name)
        expect(
            value == round(value) and value >= 0,
            f"`{name}` is an exponent k of c = 10**-k: a whole number >= 0",
        )
        want = _adam_scale_limit(seed)
        expect(
            value > 1,
            "with the loss scaled by 0.1 Adam's run barely moves: measure the "
            "deviation relative to the distance the unscaled run travelled",
        )
        expect(value < 13, "Adam is not invariant to every scale: look at what eps is for")
        where = "smaller" if value > want else "larger"
        expect(
            abs(value - want) <= 1,
            f"the rerun experiment finds a {where} k: is the deviation divided by the "
            "distance travelled, and is the threshold one half?",
        )

    return verdict(name, trials, "matches the rerun experiment within one decade")
