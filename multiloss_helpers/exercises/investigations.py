r"""Checks for the investigation exercises of chapters 1 and 4.

An investigation exercise asks the learner to run a small experiment and report one
number. Its check reruns the same experiment, on the protocol the exercise states, and
accepts the finding within a tolerance. Like every check, it prints a one-line verdict
and returns a :class:`~multiloss_helpers.exercises.CheckResult` that is truthy when the
finding is right; a wrong finding gets a hint about *what* is off, never the number.

:func:`check_bce_gradient_limit` belongs to the part "Foundations" (chapter 1) and
:func:`check_adam_scale_limit` to "Combining losses" (chapter 4). The functions that
compute the reference findings are private, so that ``mlh.exercises`` does not hand
out the answers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._harness import CheckResult

__all__ = [
    "check_adam_scale_limit",
    "check_bce_gradient_limit",
]


class _Hint(Exception):
    r"""A finding outside the tolerance, with a hint that does not give the answer away."""


def _as_number(finding: Any, name: str) -> float:
    if isinstance(finding, Tensor) and finding.numel() == 1:
        finding = finding.item()
    if isinstance(finding, bool) or not isinstance(finding, (int, float)):
        raise _Hint(f"`{name}` should be one number, got a {type(finding).__name__}")
    if not math.isfinite(finding):
        raise _Hint(f"`{name}` should be a finite number, got {finding}")
    return float(finding)


def _verdict(name: str, trial: Callable[[], None], success: str) -> CheckResult:
    try:
        trial()
    except _Hint as hint:
        print(f"✗ {name}: {hint}")
        return CheckResult(name, False, str(hint))
    print(f"✓ {name}: {success}")
    return CheckResult(name, True, success)


# ------------------------------------------------------------------- chapter 1
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

    def trial() -> None:
        value = _as_number(finding, name)
        if value >= 0:
            raise _Hint("the gradient is right at z = 0 and the limit lies below it")
        want = _bce_gradient_limit()
        if value < -99.0:
            raise _Hint(
                "that is where the loss *value* saturates; compare the gradient with "
                "sigmoid(z) - 1 itself, point by point"
            )
        if abs(value - want) > tolerance:
            where = "further from 0" if value < want else "closer to 0"
            raise _Hint(
                f"the rerun experiment puts the limit {where} than {value:g}: is the grid "
                "in float32, is the comparison relative (1% of |sigmoid(z) - 1|), and do "
                "you report the most negative logit that still passes?"
            )

    return _verdict(name, trial, "matches the rerun experiment")


# ------------------------------------------------------------------- chapter 4
def _adam_run(data: dict[str, Tensor], scale: float, steps: int, seed: int) -> Tensor:
    from ..models import MultiHeadNet

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
    from ..data import make_multitask_data
    from ..models import MultiHeadNet

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

    def trial() -> None:
        value = _as_number(finding, name)
        if value != round(value) or value < 0:
            raise _Hint(f"`{name}` is an exponent k of c = 10**-k: a whole number >= 0")
        want = _adam_scale_limit(seed)
        if value <= 1:
            raise _Hint(
                "with the loss scaled by 0.1 Adam's run barely moves: measure the "
                "deviation relative to the distance the unscaled run travelled"
            )
        if value >= 13:
            raise _Hint("Adam is not invariant to every scale: look at what eps is for")
        if abs(value - want) > 1:
            where = "smaller" if value > want else "larger"
            raise _Hint(
                f"the rerun experiment finds a {where} k: is the deviation divided by the "
                "distance travelled, and is the threshold one half?"
            )

    return _verdict(name, trial, "matches the rerun experiment within one decade")
