r"""Checks for the exercises of chapter 5, *Separate backward passes*."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    Hint,
    close,
    count_backward,
    expect,
    gen,
    run_check,
    two_loss_setup,
)

__all__ = [
    "check_accumulated_gradients",
    "check_separate_backward_step",
]


def _flat_grads(model: nn.Module, what: str) -> Tensor:
    grads = [p.grad for p in model.parameters()]
    expect(all(g is not None for g in grads), f"some parameters have no gradient after {what}")
    return torch.cat([g.flatten() for g in grads if g is not None])


def _reference_grad(batch: dict[str, Tensor]) -> Tensor:
    model, _ = two_loss_setup()
    out = model(batch["x"])
    total = F.cross_entropy(out["cls"], batch["y_cls"]) + F.mse_loss(out["reg"], batch["y_reg"])
    return torch.cat([g.flatten() for g in torch.autograd.grad(total, list(model.parameters()))])


def check_separate_backward_step(fn: Callable[[nn.Module, dict[str, Tensor]], None]) -> CheckResult:
    r"""``fn(model, batch)``: exactly one ``backward()`` per loss (two in all), leaving the
    gradient of the summed loss in ``.grad``.

    The backward passes are counted with a hook on the first parameter of the model.
    """

    def trials() -> None:
        model, batch = two_loss_setup()
        first = next(iter(model.parameters()))
        with count_backward([first]) as count:
            fn(model, batch)
        expect(
            count[0] == 2,
            f"your function ran {count[0]} backward pass(es) through the model; the exercise "
            "asks for one backward() per loss, two in all",
        )
        got = _flat_grads(model, "your function")
        expect(
            close(got, _reference_grad(batch)),
            "the gradients differ from those of the summed loss: is a gradient missing "
            "or counted twice?",
        )

    return run_check(
        "separate_backward_step", fn, trials, "one backward per loss, the gradient of the sum"
    )


def _accumulation_case(
    fn: Callable[[nn.Module, dict[str, Tensor], int], None], n: int, k: int
) -> None:
    model, batch = two_loss_setup(n=n)
    g = gen(n + k)
    before = [0.1 * torch.randn(p.shape, generator=g) for p in model.parameters()]
    for p, start in zip(model.parameters(), before):
        p.grad = start.clone()
    first = next(iter(model.parameters()))
    with count_backward([first]) as count:
        fn(model, batch, k)
    sizes = [len(batch["x"][j::k]) for j in range(k)]
    case = f"with {n} samples in k={k} micro-batches of sizes {sizes}"
    expect(
        count[0] == k,
        f"{case} your function ran {count[0]} backward pass(es); accumulating means one "
        "backward per micro-batch",
    )
    got = _flat_grads(model, "your function") - torch.cat([b.flatten() for b in before])
    want = _reference_grad(batch)
    if close(got + torch.cat([b.flatten() for b in before]), want, rtol=1e-4):
        raise Hint(
            f"{case} the gradients already in .grad before your function were lost: "
            "accumulate into them, do not zero them"
        )
    expect(
        close(got, want, rtol=1e-4),
        f"{case} your gradient is {(got.norm() / want.norm()).item():.3f}x the full-batch "
        "one, or points elsewhere"
        + (
            ": when micro-batches differ in size, how much should each one's mean count?"
            if len(set(sizes)) > 1
            else ""
        ),
    )


def check_accumulated_gradients(
    fn: Callable[[nn.Module, dict[str, Tensor], int], None],
) -> CheckResult:
    r"""``fn(model, batch, k)`` accumulates over the ``k`` micro-batches ``batch[key][j::k]``
    so that ``.grad`` gains exactly the gradient of the full-batch loss.

    The micro-batches may differ in size (30 samples in 4 micro-batches: 8, 8, 7, 7), so each
    micro-batch's mean loss must count in proportion to its number of samples. The check
    starts from non-zero ``.grad`` (the function must add to it, not zero it) and counts one
    backward pass per micro-batch.
    """

    def trials() -> None:
        for n, k in ((32, 2), (30, 4), (30, 7), (13, 1)):
            _accumulation_case(fn, n, k)

    return run_check(
        "accumulated_gradients", fn, trials, "k micro-batches, even unequal, give the full gradient"
    )
