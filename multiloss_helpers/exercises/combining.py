r"""Checks for the exercises of the Combining losses part (chapters 3 to 7)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    Hint,
    close,
    count_backward,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    grads_of,
    run_check,
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


def _task_losses(names: tuple[str, ...], seed: int) -> tuple[dict[str, Tensor], list[Tensor]]:
    """One scalar loss per name, each built from its own leaf (so each one's graph shows)."""
    g = gen(seed)
    leaves = [torch.randn(4, generator=g, requires_grad=True) for _ in names]
    forms = (lambda w: (w**2).sum(), lambda w: 3 * w.sum(), lambda w: w.abs().mean())
    losses = {name: forms[i % 3](w) for i, (name, w) in enumerate(zip(names, leaves))}
    return losses, leaves


def _leaf_grads(losses: dict[str, Tensor], leaves: list[Tensor], weights: dict[str, float]):
    total = torch.stack([weights[name] * loss for name, loss in losses.items()]).sum()
    return list(torch.autograd.grad(total, leaves, retain_graph=True))


# --------------------------------------------------------------------- chapter 3
def check_total_loss(fn: Callable[[dict[str, Tensor]], Tensor]) -> CheckResult:
    r"""``fn({name: loss})`` sums the losses and keeps every loss's graph."""

    def trials() -> None:
        for names in (("a", "b", "c"), ("cls", "reg")):
            losses, leaves = _task_losses(names, seed=len(names))
            want = torch.stack([loss.detach() for loss in losses.values()]).sum()
            total = fn(dict(losses))
            expect(
                isinstance(total, Tensor) and total.numel() == 1,
                f"expected a scalar tensor, got {describe(total)}",
            )
            expect_close(total.reshape(()), want, f"for {len(names)} losses the total")
            expect_grads(
                total,
                leaves,
                _leaf_grads(losses, leaves, dict.fromkeys(names, 1.0)),
                "your total",
            )

    return run_check("total_loss", fn, trials, "sums the losses with every graph intact")


def _reach_model() -> nn.ModuleDict:
    torch.manual_seed(0)
    return nn.ModuleDict(
        {
            "trunk": nn.Linear(4, 8),
            "head_a": nn.Linear(8, 2),
            "head_b": nn.Linear(8, 1),
            "unused": nn.Linear(8, 3),
        }
    )


def _reach_losses(model: nn.ModuleDict, x: Tensor) -> dict[str, Tensor]:
    h = torch.relu(model["trunk"](x))
    return {
        "head a": model["head_a"](h).sum(),
        "head b": model["head_b"](h).pow(2).mean(),
        "both heads": model["head_a"](h).sum() + model["head_b"](h).sum(),
        "head a on detached features": model["head_a"](h.detach()).sum(),
    }


def check_reached_parameters(fn: Callable[[Tensor, nn.Module], set[str]]) -> CheckResult:
    r"""``fn(loss, model)``: the names of the parameters that ``loss`` can send a gradient to,
    found without ``backward()`` or ``torch.autograd.grad``.

    Checked on losses of one head, of both, and of a head on detached features.
    """

    def trials() -> None:
        model = _reach_model()
        params = dict(model.named_parameters())
        for where, loss in _reach_losses(model, torch.randn(3, 4, generator=gen(4))).items():
            grads = torch.autograd.grad(
                loss, list(params.values()), allow_unused=True, retain_graph=True
            )
            want = {name for name, g in zip(params, grads) if g is not None}
            with forbid(
                (torch.Tensor, "backward"),
                (torch.autograd, "grad"),
                (torch.autograd, "backward"),
            ):
                got = fn(loss, model)
            expect(
                isinstance(got, (set, list, tuple, frozenset)),
                f"return a set of names, got {describe(got)}",
            )
            missing, extra = sorted(want - set(got)), sorted(set(got) - want)
            expect(
                not missing and not extra,
                f"for the loss of {where}: missing {missing}, not reached but listed {extra}",
            )

    return run_check(
        "reached_parameters", fn, trials, "finds exactly the parameters each loss reaches"
    )


# --------------------------------------------------------------------- chapter 4
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
        losses, leaves = _task_losses(names, seed=5)
        weights = {"depth": 0.5, "segmentation": 2.0, "normals": 0.1}
        want = torch.stack([weights[n] * loss.detach() for n, loss in losses.items()]).sum()
        total = fn(dict(losses), dict(weights))
        expect_close(total, want, "the weighted sum")
        expect_grads(total, leaves, _leaf_grads(losses, leaves, weights), "your total")
        two = {n: losses[n] for n in names[:2]}
        _expect_name_error(fn, two, {"depth": 1.0, "surface": 1.0})
        _expect_name_error(fn, two, {"depth": 1.0})
        _expect_name_error(fn, two, {"depth": 1.0, "segmentation": 1.0, "edges": 1.0})

    return run_check(
        "weighted_total", fn, trials, "weighted sum with its graph, mismatched names refused"
    )


# --------------------------------------------------------------------- chapter 5
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


# --------------------------------------------------------------------- chapter 6
def check_linear_warmup(fn: Callable[[int, int], float]) -> CheckResult:
    r"""``fn(step, warmup)`` rises linearly from 0 to 1 over ``warmup`` steps, then stays at 1."""

    def trials() -> None:
        for warmup in (1, 4, 10):
            steps = range(3 * warmup + 2)
            values = [float(fn(step, warmup)) for step in steps]
            want = [min(step / warmup, 1.0) for step in steps]
            bad = [s for s in steps if not math.isclose(values[s], want[s], abs_tol=1e-9)]
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
            got = [float(v) for v in fn(list(values), decay)]
            want: list[float] = []
            for v in values:
                want.append(v if not want else decay * want[-1] + (1 - decay) * v)
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
    r"""``fn(model)`` returns the sum of all parameters as a scalar connected to every one."""

    def trials() -> None:
        torch.manual_seed(7)
        model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        params = list(model.parameters())
        total = fn(model)
        expect(
            isinstance(total, Tensor) and total.numel() == 1,
            f"expected a scalar tensor, got {describe(total)}",
        )
        want = torch.stack([p.detach().sum() for p in params]).sum()
        expect_close(total.reshape(()), want, "the sum of all parameters")
        expect(
            total.requires_grad,
            "the value is right but the graph is cut (torch.tensor and .item() copy values)",
        )
        grads = grads_of(total, params, "your sum")
        expect(
            all(bool((g == 1).all()) for g in grads),
            "every parameter should receive a gradient of 1",
        )

    return run_check("connected_weight_sum", fn, trials, "the sum of the weights, with its graph")


def check_gradient_reversal(fn: Callable[[Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(x, scale)``: the identity forward, the gradient times ``-scale`` backward."""

    def trials() -> None:
        for scale in (1.0, 0.3, 0.0):
            x = torch.randn(4, 3, generator=gen(7), requires_grad=True)
            y = fn(x, scale)
            expect_close(y, x.detach(), "the forward pass should return the input unchanged")
            upstream = torch.randn(4, 3, generator=gen(8))
            expect(
                isinstance(y, Tensor) and y.requires_grad,
                "the output has no graph: no gradient can flow back to the input",
            )
            (grad,) = torch.autograd.grad(y, x, upstream, allow_unused=True)
            expect(grad is not None, "no gradient reaches the input: is it detached?")
            expect(
                close(grad, -scale * upstream),
                f"with scale={scale} the gradient should be -scale times the incoming one",
            )

    return run_check(
        "gradient_reversal", fn, trials, "identity forward, -scale x gradient backward"
    )
