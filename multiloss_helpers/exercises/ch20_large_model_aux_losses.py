r"""Checks for the exercises of chapter 20, *Auxiliary losses of large models*."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..moe import load_balancing_loss
from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    expect_grads,
    forbid,
    gen,
    is_number,
    plain,
    public,
    run_check,
    verdict,
)

__all__ = ["check_balancing_loss", "check_k2_bias", "check_kl_k3"]


# ------------------------------------------------------------------ balancing loss
def _balance_cases() -> list[tuple[str, Tensor, int]]:
    g = gen(20)
    uneven = torch.randn(40, 6, generator=g)
    uneven[:, 2] += 2.0  # one popular expert
    collapsed = torch.zeros(10, 4)
    collapsed[:, 1] = 30.0
    return [
        ("on random logits, top_k=2", torch.randn(24, 8, generator=g), 2),
        ("on logits with a popular expert, top_k=2", uneven, 2),
        ("on logits with a popular expert, top_k=1", uneven, 1),
        ("on collapsed routing (every token on one expert), top_k=1", collapsed, 1),
        ("on logits of 3 tokens and 5 experts, top_k=3", torch.randn(3, 5, generator=g), 3),
    ]


def _balance_hints(got: Tensor, logits: Tensor, top_k: int, want: Tensor, hint: str) -> None:
    experts = logits.shape[1]
    expect(
        not close(got.reshape(()), want / top_k, rtol=1e-4) or top_k == 1,
        f"{hint}: your value is the right one divided by top_k: count each token once "
        "for each of its experts, and divide the count by the number of tokens",
    )
    expect(
        not close(got.reshape(()), want / experts, rtol=1e-4),
        f"{hint}: your value misses a factor: the loss is scaled so that a balanced "
        "routing gives the same value whatever the number of experts",
    )


def _balance_case(fn: Callable[[Tensor, int], Tensor], hint: str, logits: Tensor, k: int) -> None:
    ref = logits.clone().requires_grad_(True)
    want = load_balancing_loss(ref, top_k=k)
    (want_grad,) = torch.autograd.grad(want, ref)
    mine = logits.clone().requires_grad_(True)
    with forbid(public("load_balancing_loss")):
        got = fn(mine, k)
    expect(
        isinstance(got, Tensor) and got.numel() == 1,
        f"{hint}: return the loss as a one-element tensor, got {describe(got)}",
    )
    _balance_hints(got.detach(), logits, k, want.detach(), hint)
    expect_close(got.reshape(()), want.detach(), hint, rtol=1e-4, atol=1e-6)
    expect_grads(got, [mine], [want_grad], f"your loss {hint}", rtol=1e-3, atol=1e-6)


def check_balancing_loss(fn: Callable[[Tensor, int], Tensor]) -> CheckResult:
    r"""``fn(router_logits, top_k)`` is the Switch/Mixtral load-balancing loss of
    ``(tokens, E)`` router logits: ``E * sum_e f_e * P_e``, with ``f_e`` the fraction of
    tokens whose ``top_k`` experts include ``e`` (each token counted once per expert,
    divided by the number of tokens) and ``P_e`` the mean router probability of ``e``.

    Checked in value and gradient (which flows through ``P_e`` only) on random, uneven and
    collapsed logits, for ``top_k`` 1 to 3. ``mlh.load_balancing_loss`` is not allowed.
    """

    def trials() -> None:
        for hint, logits, k in _balance_cases():
            _balance_case(fn, hint, logits, k)

    return run_check("balancing_loss", fn, trials, "E * sum_e f_e P_e, gradient through P")


# ------------------------------------------------------------------ the k3 estimator
def _k3_cases() -> list[tuple[str, Tensor, Tensor]]:
    g = gen(21)
    logp = torch.randn(50, generator=g).log_softmax(0)
    near = logp + 0.05 * torch.randn(50, generator=g)
    far = logp + 3.0 * torch.randn(50, generator=g)
    tiny = torch.tensor([-800.0, -0.5, -2.0, -120.0])  # exp(-800) underflows
    tiny_ref = torch.tensor([-120.0, -3.0, -0.4, -790.0])
    return [
        ("on a reference close to the policy", logp[:16], near[:16]),
        ("on a reference far from the policy", logp[16:40], far[16:40]),
        ("on log-probabilities down to -800", tiny, tiny_ref),
    ]


def _k3_values(logp: Tensor, logp_ref: Tensor) -> Tensor:
    log_rho = (logp_ref - logp).double()
    return torch.expm1(log_rho) - log_rho


def _k3_case(fn: Callable[[Tensor, Tensor], Tensor], hint: str, lp: Tensor, lq: Tensor) -> None:
    values = _k3_values(lp, lq)
    ref = lp.double().clone().requires_grad_(True)
    want_t = (torch.expm1(lq.double() - ref) - (lq.double() - ref)).mean()
    (want_grad,) = torch.autograd.grad(want_t, ref)
    mine = lp.double().clone().requires_grad_(True)
    got = fn(mine, lq.double().clone())
    expect(
        isinstance(got, Tensor) and got.numel() == 1,
        f"{hint}: return the mean over the tokens as one number, got {describe(got)}",
    )
    flipped = _k3_values(lq, lp).mean()
    expect(
        not close(got.detach().reshape(()), flipped, rtol=1e-6),
        f"{hint}: your ratio is upside down: rho is the reference's probability over the "
        "policy's, for tokens drawn from the policy",
    )
    k1 = (lp - lq).double().mean()
    expect(
        not close(got.detach().reshape(()), k1, rtol=1e-6),
        f"{hint}: your value is the mean of -log rho (k1), which can be negative",
    )
    expect_close(got.reshape(()), values.mean(), hint, rtol=1e-6, atol=1e-9, elements=values)
    expect_grads(got, [mine], [want_grad], f"your estimate {hint}", rtol=1e-5, atol=1e-9)


def check_kl_k3(fn: Callable[[Tensor, Tensor], Tensor]) -> CheckResult:
    r"""``fn(logp, logp_ref)`` is the mean over the tokens of the estimator
    ``k3 = (rho - 1) - log rho``, ``rho = pi_ref(a) / pi(a)``, from the log-probabilities of
    sampled tokens under the policy (``logp``) and under the reference (``logp_ref``).

    Checked in value and gradient (float64) on a reference close to the policy, one far
    from it, and log-probabilities down to -800, where a ratio of probabilities
    underflows.
    """

    def trials() -> None:
        for hint, lp, lq in _k3_cases():
            _k3_case(fn, hint, lp, lq)

    return run_check("kl_k3", fn, trials, "the mean of (rho - 1) - log rho")


# ------------------------------------------------------------------ investigation
BETAS = (0.3, 1.0, 3.0, 10.0)


def _policy(log_ref: Tensor, reward: Tensor, beta: float) -> Tensor:
    return (log_ref.double() + reward.double() / beta).log_softmax(0)


def _k2_bias(log_ref: Tensor, reward: Tensor, beta: float) -> dict[str, float]:
    """The relative bias of k2 and the values that typical slips give instead."""
    logp = _policy(log_ref, reward, beta)
    p, log_rho = logp.exp(), log_ref.double() - logp
    kl = float((p * -log_rho).sum())
    reverse = float((log_ref.double().exp() * log_rho).sum())  # KL(ref || pi)
    k2 = 0.5 * log_rho**2
    return {
        "right": (float((p * k2).sum()) - kl) / kl,
        "absolute": float((p * k2).sum()) - kl,
        "unweighted": (float(k2.mean()) - kl) / kl,
        "reverse": (float((p * k2).sum()) - reverse) / reverse,
        "sign": (kl - float((p * k2).sum())) / kl,
    }


_SLIPS = {
    "absolute": "your numbers are E[k2] - KL; report that bias relative to the KL",
    "unweighted": "your expectation averages over the vocabulary uniformly: weight each "
    "token by the policy's probability, since tokens are drawn from the policy",
    "reverse": "your KL is KL(reference || policy); the penalty is KL(policy || reference)",
    "sign": "your sign is flipped: the bias is E[k2] minus the KL",
}


def _k2_trial(beta: float, value: Any, log_ref: Tensor, reward: Tensor, tol: float) -> None:
    value = plain(value)
    expect(is_number(value), f"the bias for beta={beta} should be a number, got {value!r}")
    values = _k2_bias(log_ref, reward, beta)
    right = values["right"]
    if abs(float(value) - right) > tol * max(abs(right), 1e-3):
        for slip, hint in _SLIPS.items():
            target = values[slip]
            expect(abs(float(value) - target) > tol * max(abs(target), 1e-3), hint)
        expect(False, f"for beta={beta} your bias {float(value):.4g} is not what exact sums give")


def check_k2_bias(
    biases: Any, log_ref: Tensor, reward: Tensor, *, tolerance: float = 0.01
) -> CheckResult:
    r"""Investigation: ``biases`` maps each ``beta`` in 0.3, 1, 3 and 10 to the relative bias
    ``(E[k2] - KL) / KL`` of the ``k2`` estimator for the policy
    ``pi_beta ∝ exp(log_ref + reward / beta)`` against the reference ``exp(log_ref)``, the
    expectation and ``KL(pi_beta || reference)`` computed exactly over the vocabulary.

    The check computes the same numbers (float64) and compares each within ``tolerance``
    (relative).
    """

    def trials() -> None:
        expect(
            isinstance(biases, Mapping),
            f"report a dict {{beta: relative bias}}, got {describe(biases)}",
        )
        missing = set(BETAS) - set(biases)
        expect(not missing, f"the betas {sorted(missing)} are missing from your dict")
        for beta in BETAS:
            _k2_trial(beta, biases[beta], log_ref, reward, tolerance)

    return verdict("k2_bias", trials, "the biases of k2 match the exact sums")
