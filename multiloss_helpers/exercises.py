"""Self-checks for the book's exercises.

Each ``check_*`` function runs a student's function against the package's reference
on random inputs and by properties, prints a one-line verdict, and returns a
:class:`CheckResult` that is truthy when the answer works. A failed check prints a
hint about *what* is wrong (which input, which property), never the solution.
``NotImplementedError`` (an unfinished exercise stub) is let through, so a student
notebook stops at the first exercise that is not done yet.

Example:
    >>> import torch.nn.functional as F
    >>> result = check_mean_squared_error(lambda i, t, reduction="mean": F.mse_loss(i, t, reduction=reduction))
    ✓ mean_squared_error: matches F.mse_loss for every reduction and shape
    >>> bool(result)
    True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .class_balance import class_weights
from .grads import _reachable_leaves
from .losses import binary_focal_loss, focal_loss
from .metrics import balanced_accuracy
from .models import MultiHeadNet
from .weighting import pcgrad

__all__ = [
    "CheckResult",
    "check_accumulated_gradients",
    "check_autocast_losses",
    "check_balanced_accuracy",
    "check_balanced_weights",
    "check_bce_with_logits",
    "check_binary_focal",
    "check_connected_weight_sum",
    "check_ema",
    "check_gradient_reversal",
    "check_linear_warmup",
    "check_mean_squared_error",
    "check_multiclass_focal",
    "check_normalised_weights",
    "check_pcgrad_two",
    "check_per_sample_losses",
    "check_reached_parameters",
    "check_regression_loss",
    "check_separate_backward_step",
    "check_shard",
    "check_stack_losses",
    "check_total_loss",
    "check_uncertainty_total",
    "check_weighted_epoch_mean",
    "check_weighted_total",
]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a check: truthy when the answer passed."""

    name: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed


class _Hint(Exception):
    """A failed expectation, with a hint that does not give the answer away."""


def _expect(condition: bool, hint: str) -> None:
    if not condition:
        raise _Hint(hint)


def _close(a: Any, b: Tensor, *, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    if not isinstance(a, Tensor) or a.shape != b.shape:
        return False
    return bool(torch.allclose(a.detach().to(b.dtype), b, rtol=rtol, atol=atol))


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _run(name: str, fn: Any, trials: Callable[[], None], success: str) -> CheckResult:
    if not callable(fn):
        message = f"`{name}` should be a function; got {_describe(fn)}"
        print(f"✗ {name}: {message}")
        return CheckResult(name, False, message)
    try:
        trials()
    except NotImplementedError:
        raise
    except _Hint as hint:
        print(f"✗ {name}: {hint}")
        return CheckResult(name, False, str(hint))
    except Exception as error:  # the student's code raised: report it as a hint
        message = f"your function raised {type(error).__name__}: {error}"
        print(f"✗ {name}: {message}")
        return CheckResult(name, False, message)
    print(f"✓ {name}: {success}")
    return CheckResult(name, True, success)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------- chapter 1
def check_mean_squared_error(fn: Callable[..., Tensor]) -> CheckResult:
    """``fn(input, target, reduction="mean")`` is the mean squared error, for all reductions."""

    def trials() -> None:
        g = _gen(1)
        for shape in ((7,), (4, 3), (2, 3, 5)):
            a, b = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
            for reduction in ("mean", "sum", "none"):
                got = fn(a, b, reduction=reduction)
                want = F.mse_loss(a, b, reduction=reduction)
                hint = f"for reduction={reduction!r} and inputs of shape {shape} you returned "
                hint += f"{_describe(got)}, expected {_describe(want)} with other values"
                if reduction == "mean":
                    hint += " (is 'mean' dividing by the number of elements?)"
                _expect(_close(got, want), hint)

    return _run(
        "mean_squared_error", fn, trials, "matches F.mse_loss for every reduction and shape"
    )


def check_bce_with_logits(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(logits, target)`` is the mean binary cross-entropy on logits, stable at large logits."""

    def trials() -> None:
        g = _gen(2)
        logits, target = (
            3 * torch.randn(50, generator=g),
            (torch.rand(50, generator=g) < 0.4).float(),
        )
        _expect(
            _close(fn(logits, target), F.binary_cross_entropy_with_logits(logits, target)),
            "on moderate logits your value differs from the binary cross-entropy",
        )
        big = torch.tensor([-200.0, 200.0, -1e4, 1e4])
        labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
        got = fn(big, labels)
        _expect(
            isinstance(got, Tensor) and bool(torch.isfinite(got)),
            "at logits of +-200 and +-1e4 your loss is not finite: avoid computing "
            "sigmoid and then its log (look for a log-sum-exp or softplus form)",
        )
        _expect(
            _close(got, F.binary_cross_entropy_with_logits(big, labels), rtol=1e-4),
            "at very large logits your loss is finite but wrong (is the log of the "
            "probability saturating?)",
        )

    return _run(
        "bce_with_logits", fn, trials, "matches BCE-with-logits, finite up to logits of 1e4"
    )


# --------------------------------------------------------------------- chapter 2
def check_weighted_epoch_mean(fn: Callable[[list[float], list[int]], float]) -> CheckResult:
    """``fn(batch_means, batch_sizes)`` is the mean over samples, not over batches."""

    def trials() -> None:
        got = fn([1.0, 2.0, 4.0], [64, 64, 8])
        want = (64 * 1.0 + 64 * 2.0 + 8 * 4.0) / 136
        _expect(
            isinstance(got, (float, int, Tensor)) and math.isclose(float(got), want, rel_tol=1e-6),
            f"for batch means [1, 2, 4] with sizes [64, 64, 8] you returned {float(got):.4f}; "
            "a mean over samples weights each batch by its size",
        )
        _expect(math.isclose(float(fn([3.0], [5])), 3.0), "one batch should give its own mean")

    return _run("weighted_epoch_mean", fn, trials, "weights each batch by its size")


def check_per_sample_losses(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(logits, target)`` returns one cross-entropy per sample."""

    def trials() -> None:
        g = _gen(3)
        logits, target = torch.randn(12, 4, generator=g), torch.randint(4, (12,), generator=g)
        got = fn(logits, target)
        want = F.cross_entropy(logits, target, reduction="none")
        _expect(
            isinstance(got, Tensor) and got.shape == want.shape,
            f"expected one loss per sample, shape (12,); got {_describe(got)}",
        )
        _expect(
            _close(got, want),
            "the shape is right but the values are not the per-sample cross-entropy",
        )

    return _run("per_sample_losses", fn, trials, "one cross-entropy per sample")


# --------------------------------------------------------------------- chapter 3
def check_total_loss(fn: Callable[[dict[str, Tensor]], Tensor]) -> CheckResult:
    """``fn({name: loss})`` sums the losses and keeps the graph."""

    def trials() -> None:
        w = torch.randn(5, requires_grad=True)
        losses = {"a": (w**2).sum(), "b": 3 * w.sum(), "c": w.abs().mean()}
        total = fn(losses)
        _expect(
            isinstance(total, Tensor) and total.numel() == 1,
            f"expected a scalar tensor, got {_describe(total)}",
        )
        _expect(
            total.requires_grad,
            "your total has no graph: build it from the loss tensors "
            "with + or torch.stack, not by copying their values",
        )
        (grad,) = torch.autograd.grad(total, w, retain_graph=True)
        (want,) = torch.autograd.grad(sum(losses.values()), w)
        _expect(
            _close(grad, want),
            "the total has a graph but its gradient is not the sum of the gradients",
        )

    return _run("total_loss", fn, trials, "sums the losses with the graph intact")


def check_reached_parameters(fn: Callable[[Tensor, nn.Module], set[str]]) -> CheckResult:
    """``fn(loss, model)`` returns the names of the parameters that can get a gradient from ``loss``."""

    def trials() -> None:
        model = MultiHeadNet(4, {"a": 2, "b": 1}, hidden=(8,), seed=0)
        out = model(torch.randn(3, 4, generator=_gen(4)))
        for head in ("a", "b"):
            loss = out[head].sum()
            got = fn(loss, model)
            reached = _reachable_leaves(loss.grad_fn)
            want = {name for name, p in model.named_parameters() if id(p) in reached}
            _expect(
                isinstance(got, (set, list, tuple)), f"return a set of names, got {_describe(got)}"
            )
            missing, extra = sorted(want - set(got)), sorted(set(got) - want)
            _expect(
                not missing and not extra,
                f"for the loss of head {head!r}: missing {missing}, not reached but listed {extra}",
            )

    return _run(
        "reached_parameters", fn, trials, "finds exactly the parameters each head's loss reaches"
    )


# --------------------------------------------------------------------- chapter 4
def check_normalised_weights(fn: Callable[[dict[str, float]], dict[str, float]]) -> CheckResult:
    """``fn(initial_losses)`` returns ``1 / L_i(0)`` per task."""

    def trials() -> None:
        initial = {"cls": 1.1, "reg": 3141.7, "depth": 0.02}
        got = fn(initial)
        _expect(
            isinstance(got, dict) and set(got) == set(initial),
            "return a dict with the same task names",
        )
        for name, value in initial.items():
            _expect(
                math.isclose(float(got[name]) * value, 1.0, rel_tol=1e-6),
                f"task {name!r}: weight times initial loss should be 1, got {float(got[name]) * value:.4g}",
            )

    return _run("normalised_weights", fn, trials, "every task starts at a weighted loss of 1")


def check_weighted_total(
    fn: Callable[[dict[str, Tensor], dict[str, float]], Tensor],
) -> CheckResult:
    """``fn(losses, weights)`` is the weighted sum, and refuses mismatched names."""

    def trials() -> None:
        w = torch.randn(3, requires_grad=True)
        losses = {"a": (w**2).sum(), "b": w.sum()}
        total = fn(losses, {"a": 0.5, "b": 2.0})
        _expect(
            isinstance(total, Tensor) and total.requires_grad,
            "return a tensor that keeps the graph",
        )
        _expect(
            _close(total, 0.5 * losses["a"].detach() + 2.0 * losses["b"].detach()),
            "the weighted sum is wrong",
        )
        try:
            fn(losses, {"a": 1.0, "c": 1.0})
        except (ValueError, KeyError):
            pass
        else:
            raise _Hint("weights for tasks that do not match the losses should raise a ValueError")

    return _run(
        "weighted_total", fn, trials, "weighted sum with the graph, and mismatched names refused"
    )


# --------------------------------------------------------------------- chapter 5
def _two_loss_setup(seed: int = 0) -> tuple[MultiHeadNet, dict[str, Tensor]]:
    g = _gen(seed)
    model = MultiHeadNet(6, {"cls": 3, "reg": 1}, hidden=(16, 16), seed=seed)
    batch = {
        "x": torch.randn(32, 6, generator=g),
        "y_cls": torch.randint(3, (32,), generator=g),
        "y_reg": torch.randn(32, 1, generator=g),
    }
    return model, batch


def _summed_grad(batch: dict[str, Tensor], seed: int = 0) -> Tensor:
    model, _ = _two_loss_setup(seed)
    out = model(batch["x"])
    (
        F.cross_entropy(out["cls"], batch["y_cls"]) + F.mse_loss(out["reg"], batch["y_reg"])
    ).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def check_separate_backward_step(fn: Callable[[nn.Module, dict[str, Tensor]], None]) -> CheckResult:
    """``fn(model, batch)`` calls backward once per loss and leaves the summed gradient in ``.grad``."""

    def trials() -> None:
        model, batch = _two_loss_setup()
        fn(model, batch)
        grads = [p.grad for p in model.parameters()]
        _expect(
            all(g is not None for g in grads),
            "some parameters have no gradient after your function",
        )
        _expect(
            _close(torch.cat([g.flatten() for g in grads]), _summed_grad(batch)),
            "the gradients differ from those of the summed loss: is a gradient missing "
            "or counted twice?",
        )

    return _run(
        "separate_backward_step", fn, trials, "two backward passes give the gradient of the sum"
    )


def check_accumulated_gradients(
    fn: Callable[[nn.Module, dict[str, Tensor], int], None],
) -> CheckResult:
    """``fn(model, batch, k)`` accumulates over ``k`` micro-batches to the full-batch gradient."""

    def trials() -> None:
        for k in (2, 4):
            model, batch = _two_loss_setup()
            fn(model, batch, k)
            got = torch.cat([p.grad.flatten() for p in model.parameters()])
            want = _summed_grad(batch)
            ratio = (got.norm() / want.norm()).item()
            _expect(
                _close(got, want, rtol=1e-4, atol=1e-6),
                f"with k={k} your gradient is {ratio:.2f}x the full-batch one"
                + (" (each micro-batch loss needs scaling)" if abs(ratio - k) < 0.01 else ""),
            )

    return _run("accumulated_gradients", fn, trials, "k micro-batches give the full-batch gradient")


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
            _expect(
                not bad,
                f"with warmup={warmup}, step {bad[0] if bad else 0} gives {values[bad[0]] if bad else 0:.3f}",
            )

    return _run("linear_warmup", fn, trials, "0 at step 0, 1 from step `warmup` on, linear between")


def check_ema(fn: Callable[[list[float], float], list[float]]) -> CheckResult:
    """``fn(values, decay)`` returns the running exponential moving average, starting at the first value."""

    def trials() -> None:
        values = [3.0, 1.0, 2.0, 0.5, 0.5]
        for decay in (0.0, 0.5, 0.9):
            got = [float(v) for v in fn(values, decay)]
            want, avg = [], None
            for v in values:
                avg = v if avg is None else decay * avg + (1 - decay) * v
                want.append(avg)
            _expect(
                len(got) == len(values),
                f"return one average per value ({len(values)}), got {len(got)}",
            )
            _expect(
                all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(got, want)),
                f"with decay={decay} your averages are {[round(x, 4) for x in got]}; "
                "the first average is the first value, then each step keeps `decay` of the old average",
            )

    return _run("ema", fn, trials, "matches the moving average for every decay")


# --------------------------------------------------------------------- chapter 7
def check_connected_weight_sum(fn: Callable[[nn.Module], Tensor]) -> CheckResult:
    """``fn(model)`` returns the sum of all parameters as a tensor connected to them."""

    def trials() -> None:
        model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        total = fn(model)
        _expect(
            isinstance(total, Tensor) and total.numel() == 1,
            f"expected a scalar tensor, got {_describe(total)}",
        )
        want = sum(p.detach().sum() for p in model.parameters())
        _expect(_close(total.reshape(()), want), "the value is not the sum of all parameters")
        _expect(
            total.requires_grad,
            "the value is right but the graph is cut (torch.tensor copies values)",
        )
        grads = torch.autograd.grad(total, list(model.parameters()))
        _expect(
            all(bool((g == 1).all()) for g in grads),
            "every parameter should receive a gradient of 1",
        )

    return _run("connected_weight_sum", fn, trials, "the sum of the weights, with its graph")


def check_gradient_reversal(fn: Callable[[Tensor, float], Tensor]) -> CheckResult:
    """``fn(x, scale)`` is the identity forward and multiplies the gradient by ``-scale`` backward."""

    def trials() -> None:
        for scale in (1.0, 0.3):
            x = torch.randn(4, 3, generator=_gen(7), requires_grad=True)
            y = fn(x, scale)
            _expect(_close(y, x.detach()), "the forward pass should return the input unchanged")
            upstream = torch.randn(4, 3, generator=_gen(8))
            (grad,) = torch.autograd.grad(y, x, upstream)
            _expect(
                _close(grad, -scale * upstream),
                f"with scale={scale} the gradient should be -scale times the incoming one",
            )

    return _run("gradient_reversal", fn, trials, "identity forward, -scale x gradient backward")


# --------------------------------------------------------------------- chapter 8
def check_balanced_weights(fn: Callable[[Tensor, int], Tensor]) -> CheckResult:
    """``fn(target, num_classes)`` returns scikit-learn's balanced weights, n / (C n_c)."""

    def trials() -> None:
        target = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
        got = fn(target, 3)
        want = class_weights(target, 3)
        _expect(
            isinstance(got, Tensor) and got.shape == (3,),
            f"expected 3 weights, got {_describe(got)}",
        )
        _expect(
            _close(got.float(), want, rtol=1e-4),
            f"you returned {[round(v, 3) for v in got.tolist()]}: each "
            "class's weight times its count should be the same for every class, n / C",
        )

    return _run("balanced_weights", fn, trials, "equals n / (C n_c)")


def check_balanced_accuracy(fn: Callable[[Tensor, Tensor], float]) -> CheckResult:
    """``fn(pred, target)`` is the mean of the per-class recalls."""

    def trials() -> None:
        target = torch.tensor([0] * 95 + [1] * 5)
        got = float(fn(torch.zeros(100, dtype=torch.long), target))
        _expect(
            math.isclose(got, 0.5, abs_tol=1e-6),
            f"always predicting the majority class should score 0.5, you returned {got:.3f}",
        )
        g = _gen(9)
        pred, target = torch.randint(3, (60,), generator=g), torch.randint(3, (60,), generator=g)
        _expect(
            math.isclose(float(fn(pred, target)), balanced_accuracy(pred, target), rel_tol=1e-6),
            "on a random 3-class case your value differs from the mean of the per-class recalls",
        )

    return _run("balanced_accuracy", fn, trials, "the mean of the per-class recalls")


# --------------------------------------------------------------------- chapter 9
def check_binary_focal(fn: Callable[..., Tensor]) -> CheckResult:
    """``fn(logits, target, alpha, gamma)`` is the mean binary focal loss with alpha_t."""

    def trials() -> None:
        g = _gen(10)
        logits, target = (
            2 * torch.randn(40, generator=g),
            (torch.rand(40, generator=g) < 0.3).float(),
        )
        _expect(
            _close(
                fn(logits, target, None, 0.0),
                F.binary_cross_entropy_with_logits(logits, target),
                rtol=1e-4,
            ),
            "with alpha=None and gamma=0 the loss should equal BCE with logits",
        )
        for alpha, gamma in ((None, 2.0), (0.25, 2.0), (0.75, 0.5)):
            want = binary_focal_loss(logits, target, alpha=alpha, gamma=gamma)
            got = fn(logits, target, alpha, gamma)
            hint = "check the modulating factor (1 - p_t)^gamma"
            if alpha is not None:
                hint += " and that alpha weights positives and 1 - alpha negatives"
            _expect(_close(got, want, rtol=1e-4), f"with alpha={alpha}, gamma={gamma}: {hint}")

    return _run("binary_focal", fn, trials, "matches the focal loss with alpha_t")


def check_multiclass_focal(fn: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    """``fn(logits, target, gamma)`` is the mean multi-class focal loss."""

    def trials() -> None:
        g = _gen(11)
        logits, target = 2 * torch.randn(30, 5, generator=g), torch.randint(5, (30,), generator=g)
        _expect(
            _close(fn(logits, target, 0.0), F.cross_entropy(logits, target), rtol=1e-4),
            "with gamma=0 the loss should equal cross-entropy",
        )
        for gamma in (0.5, 2.0):
            _expect(
                _close(
                    fn(logits, target, gamma), focal_loss(logits, target, gamma=gamma), rtol=1e-4
                ),
                f"with gamma={gamma} the value is off: the factor uses the probability of the true class",
            )

    return _run("multiclass_focal", fn, trials, "matches mlh.focal_loss")


# -------------------------------------------------------------------- chapter 10
def check_pcgrad_two(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(g1, g2)`` is PCGrad for two tasks: project each on the other's normal plane if they conflict."""

    def trials() -> None:
        cases = [
            (torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])),
            (torch.tensor([1.0, 2.0]), torch.tensor([2.0, 1.0])),
            (torch.randn(20, generator=_gen(12)), torch.randn(20, generator=_gen(13))),
        ]
        for i, (g1, g2) in enumerate(cases):
            got = fn(g1, g2)
            want = pcgrad(torch.stack([g1, g2]))
            conflict = float(g1 @ g2) < 0
            _expect(
                _close(got, want, rtol=1e-4),
                f"case {i} ({'conflicting' if conflict else 'not conflicting'} gradients) is off"
                + ("" if conflict else ": without conflict PCGrad is the plain sum"),
            )

    return _run("pcgrad_two", fn, trials, "matches PCGrad with and without conflict")


def check_uncertainty_total(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(losses, log_vars)`` is Kendall et al.'s total, sum 0.5 exp(-s) L + 0.5 s."""

    def trials() -> None:
        losses = torch.tensor([0.5, 2.0, 4.0])
        log_vars = torch.tensor([0.0, 1.0, -0.5], requires_grad=True)
        got = fn(losses, log_vars)
        want = (0.5 * torch.exp(-log_vars.detach()) * losses + 0.5 * log_vars.detach()).sum()
        _expect(
            _close(got, want),
            "the total is off: each task contributes a weighted loss and a regulariser",
        )
        _expect(
            got.requires_grad, "the log-variances must receive gradients: keep them in the graph"
        )

    return _run("uncertainty_total", fn, trials, "matches the uncertainty-weighted total")


# -------------------------------------------------------------------- chapter 11
def check_shard(fn: Callable[[dict[str, Tensor], int, int], dict[str, Tensor]]) -> CheckResult:
    """``fn(data, rank, world_size)`` gives each rank a disjoint, equal share, all keys aligned."""

    def trials() -> None:
        data = {"x": torch.arange(24).float().view(12, 2), "i": torch.arange(12)}
        for world in (2, 3):
            seen = []
            for rank in range(world):
                part = fn(data, rank, world)
                _expect(set(part) == set(data), "every shard needs every key of the data")
                _expect(
                    len(part["i"]) == 12 // world,
                    f"with {world} ranks each shard should hold {12 // world} samples",
                )
                _expect(
                    _close(part["x"], data["x"][part["i"]]),
                    "the keys of a shard are not aligned sample by sample",
                )
                seen += part["i"].tolist()
            _expect(
                sorted(seen) == list(range(12)),
                f"with {world} ranks the shards overlap or miss samples",
            )

    return _run("shard", fn, trials, "disjoint, equal, aligned shards")


def check_autocast_losses(
    fn: Callable[[nn.Module, dict[str, Tensor]], tuple[Tensor, Tensor]],
) -> CheckResult:
    """``fn(model, batch)`` computes both losses under bfloat16 autocast on the CPU."""

    def trials() -> None:
        model, batch = _two_loss_setup()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = fn(model, batch)
        _expect(isinstance(got, tuple) and len(got) == 2, "return the two losses as a pair")
        out = model(batch["x"])
        want = (F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"]))
        for name, a, b in zip(("cls", "reg"), got, want):
            _expect(
                isinstance(a, Tensor) and a.dtype == torch.float32,
                f"the {name} loss should come out in float32",
            )
            _expect(
                _close(a, b.detach(), rtol=3e-2, atol=1e-3),
                f"the {name} loss is far from its float32 value",
            )
            _expect(
                not _close(a, b.detach(), rtol=1e-7, atol=0.0),
                f"the {name} loss equals the float32 value exactly: was autocast on?",
            )

    return _run(
        "autocast_losses", fn, trials, "both losses in float32, computed under bfloat16 autocast"
    )


# --------------------------------------------------------------------- appendix
def check_stack_losses(fn: Callable[[list[Tensor]], Tensor]) -> CheckResult:
    """``fn(losses)`` returns a 1-D tensor of the losses that keeps their graphs."""

    def trials() -> None:
        w = torch.randn(4, requires_grad=True)
        losses = [(w**2).sum(), w.sum(), w.mean()]
        got = fn(losses)
        _expect(
            isinstance(got, Tensor) and got.shape == (3,),
            f"expected shape (3,), got {_describe(got)}",
        )
        _expect(got.requires_grad, "the graph is cut: torch.tensor([...]) copies the values")
        (grad,) = torch.autograd.grad(got.sum(), w, retain_graph=True)
        (want,) = torch.autograd.grad(sum(losses), w)
        _expect(_close(grad, want), "the stacked losses do not carry the right gradients")

    return _run("stack_losses", fn, trials, "a 1-D tensor of losses with their graphs")


def check_regression_loss(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    """``fn(prediction, target)`` is the MSE of an (N, 1) prediction against an (N,) target, without broadcasting."""

    def trials() -> None:
        g = _gen(14)
        prediction, target = torch.randn(6, 1, generator=g), torch.randn(6, generator=g)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = fn(prediction, target)
        want = F.mse_loss(prediction.squeeze(1), target)
        _expect(not caught, f"your loss warns: {caught[0].message if caught else ''}")
        _expect(
            _close(got, want), "the value is not the mean squared error between matching entries"
        )

    return _run("regression_loss", fn, trials, "no broadcasting, the right mean squared error")
