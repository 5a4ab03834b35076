r"""Checks for the exercises of chapter 12, *Regularisers and auxiliary losses*."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import MultiHeadNet
from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    grads_of,
    is_number,
    public,
    run_check,
    verdict,
)

__all__ = [
    "check_clip_factor",
    "check_confidence_penalty",
    "check_l2_penalty",
]


def _l2_models() -> list[tuple[str, nn.Module]]:
    """Models with biases, normalisation layers and a 3-D convolution weight."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12)
        mlp = nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.ReLU(), nn.Linear(7, 3))
        conv = nn.Sequential(
            nn.Conv1d(2, 4, 3), nn.BatchNorm1d(4), nn.Flatten(), nn.Linear(4 * 6, 2)
        )
        for module in (mlp, conv):  # non-trivial norm weights and biases
            for p in module.parameters():
                if p.dim() < 2:
                    p.data.normal_()
    heads = MultiHeadNet(6, {"a": 2, "b": 1}, hidden=(8, 8), seed=12)
    return [("an MLP with a LayerNorm", mlp), ("a Conv1d net with a BatchNorm", conv),
            ("a MultiHeadNet", heads)]  # fmt: skip


def _fill_grads(model: nn.Module) -> None:
    """Leave a non-zero ``.grad`` on every parameter, as after a training step."""
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen(3)) + 0.5


def _from_grads(got: Tensor, model: nn.Module) -> bool:
    """Whether ``got`` is a squared norm of the gradients rather than of the weights."""
    squares = sum(float(p.grad.square().sum()) for p in model.parameters() if p.grad is not None)
    return any(close(got, torch.tensor(c * squares), rtol=1e-4) for c in (0.5, 1.0))


def _l2_case(fn: Callable[[nn.Module], Tensor], where: str, model: nn.Module) -> None:
    _fill_grads(model)
    weights = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    with forbid(public("l2_penalty"), public("l1_penalty")):
        got = fn(model)
    expect(
        isinstance(got, Tensor) and got.numel() == 1 and got.is_floating_point(),
        f"for {where} return the penalty as a scalar float tensor, got {describe(got)}",
    )
    expect(
        not (isinstance(got, Tensor) and _from_grads(got.detach(), model)),
        f"for {where} your penalty is computed from the gradients (`.grad`), not from the "
        "weights: weight decay penalises the size of the parameters themselves",
    )
    grads = grads_of(got, weights, f"your penalty for {where}")
    extra = torch.autograd.grad(got, others, allow_unused=True, retain_graph=True)
    expect(
        all(g is None or not bool(g.any()) for g in extra),
        f"for {where} your penalty depends on the biases or the normalisation weights "
        "(the 1-D parameters): the usual split decays the weights only",
    )
    twice = all(close(g, 2 * w.detach(), rtol=1e-4) for g, w in zip(grads, weights))
    expect(
        not twice,
        f"for {where} the gradient of your penalty is twice the weight, so the loss term "
        "would decay twice as fast as SGD(weight_decay=lam): check the constant",
    )
    expect(
        all(close(g, w.detach(), rtol=1e-4) for g, w in zip(grads, weights)),
        f"for {where} the gradient of your penalty with respect to each weight should be the "
        "weight itself (so that SGD adds lam * w, as weight_decay does)",
    )
    want = sum(0.5 * float(w.detach().double().square().sum()) for w in weights)
    expect_close(got.reshape(()).double(), torch.tensor(want, dtype=torch.float64), where)


def check_l2_penalty(fn: Callable[[nn.Module], Tensor]) -> CheckResult:
    r"""``fn(model)`` is the L2 penalty over the weights (tensors with two or more
    dimensions) that makes ``loss + lam * fn(model)`` under SGD take the same steps as
    ``SGD`` with ``weight_decay=lam`` on those weights.

    Checked on an MLP with a LayerNorm, a Conv1d net with a BatchNorm and a
    ``MultiHeadNet``, with ``.grad`` already filled: the value, a gradient that reaches
    every weight and equals it, and no gradient to biases or normalisation weights.
    ``mlh.l2_penalty`` and ``mlh.l1_penalty`` are not allowed.
    """

    def trials() -> None:
        for where, model in _l2_models():
            _l2_case(fn, where, model)

    return run_check("l2_penalty", fn, trials, "weights only, and its gradient is the weight")


def _entropy(logits: Tensor) -> Tensor:
    log_p = F.log_softmax(logits, dim=1)
    return -(log_p.exp() * log_p).sum(1)


def _confidence_cases() -> list[tuple[str, Tensor, Tensor, float]]:
    g = gen(13)
    moderate = 2 * torch.randn(24, 4, generator=g)
    target = torch.randint(4, (24,), generator=g)
    extreme = torch.tensor([[1e4, 0.0, -1e4], [0.0, 40.0, 0.0], [-1e4, 1e4, 0.0]])
    ext_target = torch.tensor([0, 1, 0])
    cases = [("on moderate logits", moderate, target, b) for b in (0.0, 0.1, 1.0)]
    return [*cases, ("on confident logits (up to +-1e4)", extreme, ext_target, 0.7)]


def _confidence_case(
    fn: Callable[[Tensor, Tensor, float], Tensor],
    where: str,
    logits: Tensor,
    target: Tensor,
    beta: float,
) -> None:
    ref = logits.clone().requires_grad_(True)
    want = F.cross_entropy(ref, target) - beta * _entropy(ref).mean()
    (want_grad,) = torch.autograd.grad(want, ref)
    mine = logits.clone().requires_grad_(True)
    with forbid(public("predictive_entropy")):
        got = fn(mine, target.clone(), beta)
    hint = f"{where} with beta={beta}"
    if isinstance(got, Tensor) and got.shape == () and beta > 0:
        entropy = _entropy(logits).mean()
        plus = F.cross_entropy(logits, target) + beta * entropy
        expect(
            close(plus, want.detach(), rtol=1e-4) or not close(got, plus, rtol=1e-4),
            f"{hint}: your term lowers the entropy; the confidence penalty rewards spread "
            "predictions, so a higher entropy must give a lower loss",
        )
        summed = F.cross_entropy(logits, target) - beta * _entropy(logits).sum()
        expect(
            close(summed, want.detach(), rtol=1e-4) or not close(got, summed, rtol=1e-4),
            f"{hint}: your entropy term grows with the batch size; average it over the "
            "samples, as cross-entropy is",
        )
    expect_close(got, want.detach(), hint, rtol=1e-4, atol=1e-5)
    expect_grads(got, [mine], [want_grad], f"your loss {hint}", rtol=1e-3, atol=1e-6)


def check_confidence_penalty(fn: Callable[[Tensor, Tensor, float], Tensor]) -> CheckResult:
    r"""``fn(logits, target, beta)`` is the mean cross-entropy minus ``beta`` times the mean
    entropy of the softmax, for ``(N, C)`` logits (Pereyra et al. 2017).

    Checked on moderate logits for ``beta`` in 0, 0.1 and 1, and on confident logits up to
    +-1e4, where the value and the gradient must stay finite.
    ``mlh.predictive_entropy`` is not allowed.
    """

    def trials() -> None:
        for where, logits, target, beta in _confidence_cases():
            _confidence_case(fn, where, logits, target, beta)

    return run_check(
        "confidence_penalty", fn, trials, "cross-entropy minus beta times the mean entropy"
    )


# investigation: the learner reports a measured finding; the check reruns the experiment
def _clip_factor(model: nn.Module, batch: dict[str, Tensor], k: float, max_norm: float) -> float:
    r"""The factor ``clip_grad_norm_(max_norm)`` applies to the gradient of CE + MSE(k y)."""
    out = model(batch["x"])
    total = F.cross_entropy(out["cls"], batch["y_cls"]) + F.mse_loss(out["reg"], k * batch["y_reg"])
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(total, params, allow_unused=True)
    norm = float(torch.cat([g.flatten() for g in grads if g is not None]).norm())
    return min(1.0, max_norm / (norm + 1e-6))


def check_clip_factor(
    factors: Any,
    model: nn.Module,
    batch: dict[str, Tensor],
    *,
    max_norm: float = 5.0,
    tolerance: float = 0.02,
) -> CheckResult:
    r"""Investigation: ``factors`` maps each target scale ``k`` you tried (at least 1, 3, 10
    and 30) to the factor by which ``clip_grad_norm_(params, max_norm)`` scales the gradient
    of ``cross_entropy + mse_loss(reg, k * y_reg)`` for ``model`` on ``batch``: 1 when
    nothing is clipped.

    The check measures the same factors itself and compares each within ``tolerance``
    (relative), and checks that the factor does not grow with ``k``.
    """

    def trials() -> None:
        expect(
            isinstance(factors, Mapping) and len(factors) >= 4,
            f"report a dict {{k: factor}} with at least four target scales, "
            f"got {describe(factors)}",
        )
        missing = {1, 3, 10, 30} - set(factors)
        expect(not missing, f"target scales {sorted(missing)} are missing from your dict")
        for k in sorted(factors):
            factor = factors[k]
            expect(
                is_number(factor) and 0 < float(factor) <= 1,
                f"the factor for k={k} should be a number in (0, 1], got {factor!r}: "
                "clipping never scales a gradient up",
            )
            want = _clip_factor(model, batch, float(k), max_norm)
            expect(
                abs(float(factor) - want) <= tolerance * want,
                f"for k={k} your factor {float(factor):.4g} is off: it is max_norm divided by "
                "the norm of the *summed* gradient over every parameter, or 1 when that norm "
                "is below max_norm",
            )
        ordered = [float(factors[k]) for k in sorted(factors)]
        expect(
            all(a >= b * (1 - tolerance) for a, b in itertools.pairwise(ordered)),
            "your factors should fall (or stay at 1) as the target scale grows",
        )

    return verdict("clip_factor", trials, "the clip factors match the measured ones")
