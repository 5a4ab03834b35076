r"""Checks for the exercises of chapter 17, *Dense prediction: Dice plus cross-entropy*."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..dice import dice_loss
from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    expect_grads,
    expect_number,
    forbid,
    gen,
    public,
    run_check,
    verdict,
)

__all__ = ["check_dice_floor", "check_generalised_dice"]


def _generalised(
    logits: Tensor, target: Tensor, smooth: float, *, absent: str = "max", power: int = 2
) -> Tensor:
    """Generalised Dice per image (Sudre et al. 2017, MONAI's rule for absent classes);
    ``absent`` and ``power`` give the typical mistakes' values."""
    p = logits.softmax(1)
    t = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    count = t.sum((2, 3))
    w = 1 / count**power
    missing = torch.isinf(w)
    w = w.masked_fill(missing, 0.0)
    if absent == "max":
        w = torch.where(missing, w.max(1, keepdim=True).values, w)
    overlap = (w * (p * t).sum((2, 3))).sum(1)
    total = (w * (p.sum((2, 3)) + count)).sum(1)
    return 1 - (2 * overlap + smooth) / (total + smooth)


def _batch_generalised(logits: Tensor, target: Tensor, smooth: float) -> Tensor:
    """The same with the sums and weights over the whole batch (a typical mistake)."""
    p = logits.softmax(1)
    t = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    count = t.sum((0, 2, 3))
    w = 1 / count**2
    overlap = (w * (p * t).sum((0, 2, 3))).sum()
    total = (w * (p.sum((0, 2, 3)) + count)).sum()
    return 1 - (2 * overlap + smooth) / (total + smooth)


def _segmentation_case(seed: int, n: int, classes: int, size: int) -> tuple[Tensor, Tensor]:
    """Logits and targets where some images lack some classes (one has background only)."""
    g = gen(seed)
    logits = 2 * torch.randn(n, classes, size, size, generator=g)
    target = torch.randint(classes, (n, size, size), generator=g)
    target[0] = 0  # background only
    target[1] = torch.where(target[1] == classes - 1, 0, target[1])  # last class absent
    return logits, target


_MISTAKES = (
    (
        lambda z, t, s: _generalised(z, t, s, absent="zero").mean(),
        "a class absent from an image should get the largest finite weight of that image, "
        "not a weight of 0",
    ),
    (
        lambda z, t, s: _generalised(z, t, s, power=1).mean(),
        "the weight of a class is one over its pixel count squared",
    ),
    (
        _batch_generalised,
        "your value looks like one Dice over the whole batch: the weights and the sums "
        "belong to each image, then average over the images",
    ),
)


def check_generalised_dice(fn: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(logits, target, smooth)`` is the mean over images of the generalised Dice loss
    (Sudre et al. 2017) with weights :math:`1 / (\sum_i t_{c,i})^2` per image and class, a
    class absent from an image weighted by the largest finite weight of that image.

    Checked on logits ``(N, C, H, W)`` with images that lack some classes (one holds
    background only), for ``smooth`` 1e-5 and 1: values and gradients, finite.
    ``mlh.dice_loss``, ``mlh.DiceLoss`` and ``mlh.DiceCELoss`` are not allowed.
    """

    def trials() -> None:
        forbidden = (public("dice_loss"), public("DiceLoss"), public("DiceCELoss"))
        for seed, n, classes, size, smooth in ((0, 4, 4, 6, 1e-5), (1, 3, 3, 5, 1.0)):
            logits, target = _segmentation_case(seed, n, classes, size)
            where = f"on {n} images of {classes} classes with smooth={smooth}"
            ref = logits.double().requires_grad_()
            want = _generalised(ref, target, smooth).mean()
            (want_grad,) = torch.autograd.grad(want, ref)
            mine = logits.clone().requires_grad_()
            with forbid(*forbidden):
                got = fn(mine, target.clone(), smooth)
            expect(
                isinstance(got, Tensor) and got.numel() == 1,
                f"{where}: return one number (a 0-d tensor), got {describe(got)}",
            )
            expect(
                bool(torch.isfinite(got.detach()).all()),
                f"{where}: your value is not finite; a class absent from an image has "
                "an infinite weight until you replace it",
            )
            for mistake, hint in _MISTAKES:
                value = mistake(logits.double(), target, smooth).reshape(got.shape)
                mistaken = close(got.detach().double(), value, rtol=1e-4, atol=1e-6)
                expect(not mistaken, f"{where}: {hint}")
            expect_close(got.reshape(()), want.detach().float(), where, rtol=1e-4, atol=1e-6)
            expect_grads(got, [mine], [want_grad.float()], f"your loss {where}", rtol=1e-3)

    return run_check(
        "generalised_dice", fn, trials, "values and gradients right, empty classes included"
    )


_SMOOTHS = (1e-5, 1e-3, 1e-1, 1.0)


def _floors(data: Mapping[str, Tensor], **options: Any) -> dict[float, float]:
    """The per-image Dice of the confident, correct prediction, for each smoothing."""
    y = data["y"]
    right = 10 * F.one_hot(y, 4).permute(0, 3, 1, 2).float()
    return {s: dice_loss(right, y, smooth=s, **options).item() for s in _SMOOTHS}


def _reported(floors: Mapping[Any, Any], smooth: float) -> Any:
    """The value reported for ``smooth`` (a key within a relative 1e-9 of it)."""
    for key, value in floors.items():
        if isinstance(key, (int, float)) and math.isclose(float(key), smooth, rel_tol=1e-9):
            return value
    raise KeyError(smooth)


def check_dice_floor(floors: Any, data: Any) -> CheckResult:
    r"""Investigation: ``floors`` maps each ``smooth`` in 1e-5, 1e-3, 1e-1 and 1 to the
    per-image Dice loss (``mlh.dice_loss``, background included) of the confident, correct
    prediction (logit 10 on each pixel's true class, 0 elsewhere) on ``data``, a
    ``mlh.make_segmentation_data`` set.

    The check reruns the measurement on ``data`` and accepts each value within a relative
    1e-3; it checks that the values fall as ``smooth`` grows, and names the usual slips
    (batch Dice, the background left out).
    """

    def trials() -> None:
        expect(
            isinstance(data, Mapping) and isinstance(data.get("y"), Tensor),
            f"pass the data set you measured on (a dict with 'y'), got {describe(data)}",
        )
        expect(
            isinstance(floors, Mapping),
            f"report a dict {{smooth: loss}}, got {describe(floors)}",
        )
        want = _floors(data)
        slips = {
            "batch Dice (per_image=False)": _floors(data, per_image=False),
            "the background left out": _floors(data, include_background=False),
        }
        got = {}
        for smooth in _SMOOTHS:
            try:
                value = _reported(floors, smooth)
            except KeyError:
                expect(False, f"smooth={smooth:g} is missing from your dict")
            hint = f"the floor for smooth={smooth:g}"
            for slip, values in slips.items():
                number = value.item() if isinstance(value, Tensor) else value
                same = isinstance(number, float) and math.isclose(
                    number, values[smooth], rel_tol=1e-3
                )
                expect(not same or math.isclose(number, want[smooth], rel_tol=1e-3),
                       f"{hint} equals the value of {slip}: measure per-image Dice of "
                       "every class")  # fmt: skip
            got[smooth] = expect_number(value, want[smooth], hint, rel_tol=1e-3)
        ordered = [got[s] for s in _SMOOTHS]
        expect(
            all(a > b for a, b in itertools.pairwise(ordered)),
            "your floors should fall as smooth grows",
        )

    return verdict("dice_floor", trials, "the floors match the rerun and fall with smooth")
