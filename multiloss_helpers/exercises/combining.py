r"""Checks for the exercises of the Combining losses part (chapters 3 to 7)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    Hint,
    close,
    describe,
    expect,
    gen,
    package,
    run_check,
    summed_grad,
    two_loss_setup,
)

__all__ = [
    "check_accumulated_gradients",
    "check_connected_weight_sum",
    "check_ema",
    "check_gradient_reversal",
    "check_linear_warmup",
    "check_normalised_weights",
    "check_reached_parameters",
    "check_separate_backward_step",
    "check_total_loss",
    "check_weighted_total",
]


# --------------------------------------------------------------------- chapter 3
def check_total_loss(fn: Callable[[dict[str, Tensor]], Tensor]) -> CheckResult:
    """``fn({name: loss})`` sums the losses and keeps the graph."""

    def trials() -> None:
        w = torch.randn(5, requires_grad=True)
        losses = {"a": (w**2).sum(), "b": 3 * w.sum(), "c": w.abs().mean()}
        total = fn(losses)
        expect(
            isinstance(total, Tensor) and total.numel() == 1,
            f"expected a scalar tensor, got {describe(total)}",
        )
        expect(
            total.requires_grad,
            "your total has no graph: build it from the loss tensors "
            "with + or torch.stack, not by copying their values",
        )
        (grad,) = torch.autograd.grad(total, w, retain_graph=True)
        (want,) = torch.autograd.grad(sum(losses.values()), w)
        expect(
            close(grad, want),
            "the total has a graph but its gradient is not the sum of the gradients",
        )

    return run_check("total_loss", fn, trials, "sums the losses with the graph intact")


def check_reached_parameters(fn: Callable[[Tensor, nn.Module], set[str]]) -> CheckResult:
    r"""``fn(loss, model)``: the names of the parameters that ``loss`` can send a gradient to."""

    def trials() -> None:
        model = package().MultiHeadNet(4, {"a": 2, "b": 1}, hidden=(8,), seed=0)
        out = model(torch.randn(3, 4, generator=gen(4)))
        for head in ("a", "b"):
            loss = out[head].sum()
            got = fn(loss, model)
            params = dict(model.named_parameters())
            grads = torch.autograd.grad(
                loss, list(params.values()), allow_unused=True, retain_graph=True
            )
            want = {name for name, g in zip(params, grads) if g is not None}
            expect(
                isinstance(got, (set, list, tuple)), f"return a set of names, got {describe(got)}"
            )
            missing, extra = sorted(want - set(got)), sorted(set(got) - want)
            expect(
                not missing and not extra,
                f"for the loss of head {head!r}: missing {missing}, not reached but listed {extra}",
            )

    return run_check(
        "reached_parameters", fn, trials, "finds exactly the parameters each head's loss reaches"
    )


# --------------------------------------------------------------------- chapter 4
def check_normalised_weights(fn: Callable[[dict[str, float]], dict[str, float]]) -> CheckResult:
    """``fn(initial_losses)`` returns ``1 / L_i(0)`` per task."""

    def trials() -> None:
        initial = {"cls": 1.1, "reg": 3141.7, "depth": 0.02}
        got = fn(initial)
        expect(
            isinstance(got, dict) and set(got) == set(initial),
            "return a dict with the same task names",
        )
        for name, value in initial.items():
            expect(
                math.isclose(float(got[name]) * value, 1.0, rel_tol=1e-6),
                f"task {name!r}: weight times initial loss should be 1, "
                f"got {float(got[name]) * value:.4g}",
            )

    return run_check("normalised_weights", fn, trials, "every task starts at a weighted loss of 1")


def check_weighted_total(
    fn: Callable[[dict[str, Tensor], dict[str, float]], Tensor],
) -> CheckResult:
    """``fn(losses, weights)`` is the weighted sum, and refuses mismatched names."""

    def trials() -> None:
        w = torch.randn(3, requires_grad=True)
        losses = {"a": (w**2).sum(), "b": w.sum()}
        total = fn(losses, {"a": 0.5, "b": 2.0})
        expect(
            isinstance(total, Tensor) and total.requires_grad,
            "return a tensor that keeps the graph",
        )
        expect(
            close(total, 0.5 * losses["a"].detach() + 2.0 * losses["b"].detach()),
            "the weighted sum is wrong",
        )
        try:
            fn(losses, {"a": 1.0, "c": 1.0})
        except (ValueError, KeyError):
            pass
        else:
            raise Hint("weights for tasks that do not match the losses should raise a ValueError")

    return run_check(
        "weighted_total", fn, trials, "weighted sum with the graph, and mismatched names refused"
    )


# --------------------------------------------------------------------- chapter 5
def check_separate_backward_step(fn: Callable[[nn.Module, dict[str, Tensor]], None]) -> CheckResult:
    r"""``fn(model, batch)``: one backward per loss, the summed gradient left in ``.grad``."""

    def trials() -> None:
        model, batch = two_loss_setup()
        fn(model, batch)
        grads = [p.grad for p in model.parameters()]
        expect(
            all(g is not None for g in grads),
            "some parameters have no gradient after your function",
        )
        expect(
            close(torch.cat([g.flatten() for g in grads]), summed_grad(batch)),
            "the gradients differ from those of the summed loss: is a gradient missing "
            "or counted twice?",
        )

    return run_check(
        "separate_backward_step", fn, trials, "two backward passes give the gradient of the sum"
    )


def check_accumulated_gradients(
    fn: Callable[[nn.Module, dict[str, Tensor], int], None],
) -> CheckResult:
    """``fn(model, batch, k)`` accumulates over ``k`` micro-batches to the full-batch gradient."""

    def trials() -> None:
        for k in (2, 4):
            model, batch = two_loss_setup()
            fn(model, batch, k)
            got = torch.cat([p.grad.flatten() for p in model.parameters()])
            want = summed_grad(batch)
            ratio = (got.norm() / want.norm()).item()
            expect(
                close(got, want, rtol=1e-4, atol=1e-6),
                f"with k={k} your gradient is {ratio:.2f}x the full-batch one"
                + (" (each micro-batch loss needs scaling)" if abs(ratio - k) < 0.01 else ""),
            )

    return run_check(
        "accumulated_gradients", fn, trials, "k micro-batches give the full-batch gradient"
    )


# --------------------------------------------------------------------- chapter 6
def check_linear_warmup(fn: Callable[[int, int], float]) -> CheckResult:
    """``fn(step, warmup)`` rises linearly from 0 to 1 over ``warmup`` steps, then stays at 1."""

    def trials() -> None:
        for warmup in (1, 4, 10):
            values = [float(fn(step, warmup)) for step in range(3 * warmup + 2)]
            want = [min(step / warmup, 1.0) for step in range(3 * warmup + 2)]
            bad = [
                s
                for s, (a, b) in enumerate(zip(values, want))
                if not math.isclose(a, b, abs_tol=1e-9)
            ]
            expect(
                not bad,
                f"with warmup={warmup}, step {bad[0] if bad else 0} gives "
                f"{values[bad[0]] if bad else 0:.3f}",
            )

    return run_check(
        "linear_warmup", fn, trials, "0 at step 0, 1 from step `warmup` on, linear between"
    )


def check_ema(fn: Callable[[list[float], float], list[float]]) -> CheckResult:
    r"""``fn(values, decay)``: the running exponential moving average from the first value."""

    def trials() -> None:
        values = [3.0, 1.0, 2.0, 0.5, 0.5]
        for decay in (0.0, 0.5, 0.9):
            got = [float(v) for v in fn(values, decay)]
            want, avg = [], None
            for v in values:
                avg = v if avg is None else decay * avg + (1 - decay) * v
                want.append(avg)
            expect(
                len(got) == len(values),
                f"return one average per value ({len(values)}), got {len(got)}",
            )
            expect(
                all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(got, want)),
                f"with decay={decay} your averages are {[round(x, 4) for x in got]}; "
                "the first average is the first value, then each step keeps `decay` of the "
                "old average",
            )

    return run_check("ema", fn, trials, "matches the moving average for every decay")


# --------------------------------------------------------------------- chapter 7
def check_connected_weight_sum(fn: Callable[[nn.Module], Tensor]) -> CheckResult:
    """``fn(model)`` returns the sum of all parameters as a tensor connected to them."""

    def trials() -> None:
        model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        total = fn(model)
        expect(
            isinstance(total, Tensor) and total.numel() == 1,
            f"expected a scalar tensor, got {describe(total)}",
        )
        want = sum(p.detach().sum() for p in model.parameters())
        expect(close(total.reshape(()), want), "the value is not the sum of all parameters")
        expect(
            total.requires_grad,
            "the value is right but the graph is cut (torch.tensor copies values)",
        )
        grads = torch.autograd.grad(total, list(model.parameters()))
        expect(
            all(bool((g == 1).all()) for g in grads),
            "every parameter should receive a gradient of 1",
        )

    return run_check("connected_weight_sum", fn, trials, "the sum of the weights, with its graph")


def check_gradient_reversal(fn: Callable[[Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(x, scale)``: the identity forward, the gradient times ``-scale`` backward."""

    def trials() -> None:
        for scale in (1.0, 0.3):
            x = torch.randn(4, 3, generator=gen(7), requires_grad=True)
            y = fn(x, scale)
            expect(close(y, x.detach()), "the forward pass should return the input unchanged")
            upstream = torch.randn(4, 3, generator=gen(8))
            (grad,) = torch.autograd.grad(y, x, upstream)
            expect(
                close(grad, -scale * upstream),
                f"with scale={scale} the gradient should be -scale times the incoming one",
            )

    return run_check(
        "gradient_reversal", fn, trials, "identity forward, -scale x gradient backward"
    )
