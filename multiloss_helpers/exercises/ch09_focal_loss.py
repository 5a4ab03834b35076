r"""Checks for the exercises of chapter 9, *Focal loss*."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from ..losses import binary_focal_loss, focal_loss
from ._harness import (
    CheckResult,
    close,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    public,
    run_check,
)

__all__ = [
    "check_binary_focal",
    "check_multiclass_focal",
]


def _extreme_binary() -> tuple[Tensor, Tensor]:
    """Confident right and confident wrong logits up to +-1e4, with their targets."""
    logits = torch.tensor([20.0, -20.0, 40.0, -40.0, 1e4, -1e4, 1e4, -1e4, 20.0, -1e4])
    target = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    return logits, target


_CONSTANT_ALPHA = (
    "your value weights every element by the same alpha, but alpha_t depends on each "
    "element's target"
)


def _answer(fn: Callable[..., Tensor], target: Tensor, *args: object) -> Callable[..., Tensor]:
    """The student's loss as a function of the logits alone."""
    return lambda logits: fn(logits, target.clone(), *args)


def _focal_case(
    reference: Callable[..., Tensor],
    call: Callable[[Tensor], Tensor],
    logits: Tensor,
    where: str,
    forbidden: tuple[tuple[object, str], ...],
    mistakes: tuple[tuple[Tensor, str], ...] = (),
) -> None:
    """Values and gradients of ``call(logits)`` (the answer) against ``reference``; a value
    equal to one of ``mistakes`` (a value and its hint) gets that hint, a wrong reduction
    one that names it."""
    ref_logits = logits.clone().requires_grad_(True)
    want = reference(ref_logits)
    (want_grad,) = torch.autograd.grad(want, ref_logits)
    elements = reference(logits.clone(), reduction="none")
    mine = logits.clone().requires_grad_(True)
    with forbid(*forbidden):
        got = call(mine)
    for value, hint in mistakes:
        mistaken = isinstance(got, Tensor) and close(got.detach(), value, rtol=1e-4, atol=1e-5)
        expect(not (mistaken and not close(value, want.detach(), rtol=1e-4)), f"{where}: {hint}")
    expect_close(got, want.detach(), where, rtol=1e-4, atol=1e-5, elements=elements)
    expect_grads(got, [mine], [want_grad], f"your loss {where}", rtol=1e-3, atol=1e-6)


def check_binary_focal(fn: Callable[..., Tensor]) -> CheckResult:
    r"""``fn(logits, target, alpha, gamma)`` is the mean binary focal loss with ``alpha_t``
    (``alpha=None``: no weighting).

    Checked on moderate logits for several ``alpha`` and ``gamma``, and on confident samples
    (logits up to +-1e4) for ``gamma`` in 0, 0.5 and 2: the value and the gradient must be
    finite and equal to the reference's. ``(1 - p_t) ** gamma`` computed from a probability
    that rounds to 1 has an infinite derivative for ``gamma < 1``, hence NaN gradients.
    ``mlh.binary_focal_loss`` and ``mlh.BinaryFocalLoss`` are not allowed.
    """

    def trials() -> None:
        forbidden = (public("binary_focal_loss"), public("BinaryFocalLoss"))
        g = gen(10)
        moderate = 2 * torch.randn(40, generator=g)
        mod_target = (torch.rand(40, generator=g) < 0.3).float()
        extreme, ext_target = _extreme_binary()
        combos = [(None, 0.0), (None, 2.0), (0.25, 2.0), (0.75, 0.5), (None, 0.5)]
        cases = [(moderate, mod_target, "on moderate logits", a, gm) for a, gm in combos]
        cases += [
            (extreme, ext_target, "on confident samples (logits up to +-1e4)", a, gm)
            for a, gm in ((0.25, 0.5), (None, 2.0), (0.25, 0.0), (None, 0.25))
        ]
        for logits, target, where, alpha, gamma in cases:
            plain = binary_focal_loss(logits, target, alpha=None, gamma=gamma)
            constant = () if alpha is None else ((alpha * plain, _CONSTANT_ALPHA),)
            _focal_case(
                partial(binary_focal_loss, target=target, alpha=alpha, gamma=gamma),
                _answer(fn, target, alpha, gamma),
                logits,
                f"{where} with alpha={alpha}, gamma={gamma}",
                forbidden,
                constant,
            )

    return run_check(
        "binary_focal", fn, trials, "values and gradients right, finite up to 1e4 for every gamma"
    )


def check_multiclass_focal(fn: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(logits, target, gamma)`` is the mean multi-class focal loss for ``(N, C)`` logits.

    Checked on moderate logits (``gamma=0`` must equal cross-entropy) and on confident samples
    (logits up to +-1e4) for ``gamma`` in 0.5 and 2: the value and the gradient must be finite
    and equal to the reference's. ``mlh.focal_loss`` and ``mlh.FocalLoss`` are not allowed.
    """

    def trials() -> None:
        forbidden = (public("focal_loss"), public("FocalLoss"))
        g = gen(11)
        moderate, mod_target = (
            2 * torch.randn(30, 5, generator=g),
            torch.randint(5, (30,), generator=g),
        )
        extreme = torch.tensor(
            [[1e4, 0.0, 0.0], [0.0, 40.0, 0.0], [-1e4, 0.0, 1e4], [30.0, 0.0, -30.0]]
        )
        ext_target = torch.tensor([0, 1, 0, 0])
        cases = [(moderate, mod_target, "on moderate logits", gm) for gm in (0.0, 0.5, 2.0)]
        cases += [
            (extreme, ext_target, "on confident samples (logits up to +-1e4)", gm)
            for gm in (0.5, 2.0, 0.0)
        ]
        for logits, target, where, gamma in cases:
            _focal_case(
                partial(focal_loss, target=target, gamma=gamma),
                _answer(fn, target, gamma),
                logits,
                f"{where} with gamma={gamma}",
                forbidden,
            )

    return run_check(
        "multiclass_focal",
        fn,
        trials,
        "values and gradients right, finite up to 1e4 for every gamma",
    )
