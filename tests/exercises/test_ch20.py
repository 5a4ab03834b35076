"""Chapter 20's checks: right answers pass, typical wrong ones fail with their hint, a stub
stops."""

from __future__ import annotations

import torch

import multiloss_helpers as mlh
from multiloss_helpers.exercises import ch20_large_model_aux_losses as ch20

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("scatter", "topk(", "expm1", "softmax(", "mean(0)")


# ------------------------------------------------------------------ balancing loss
def _balance(logits, top_k, per_token_count=1.0, scale=True, detach_probs=False):
    experts = logits.shape[1]
    chosen = logits.topk(top_k, dim=1).indices
    routed = torch.zeros_like(logits).scatter(1, chosen, per_token_count)
    probs = torch.softmax(logits, dim=1)
    if detach_probs:
        probs = probs.detach()
    value = (routed.mean(0) * probs.mean(0)).sum()
    return experts * value if scale else value


def _balance_right(logits, top_k):
    return _balance(logits, top_k)


def _balance_over_k_t(logits, top_k):  # f_e divided by k * T
    return _balance(logits, top_k, per_token_count=1.0 / top_k)


def _balance_no_e(logits, top_k):
    return _balance(logits, top_k, scale=False)


def _balance_detached(logits, top_k):
    return _balance(logits, top_k, detach_probs=True)


def _balance_probs_of_chosen(logits, top_k):  # P_e averaged over the routed tokens only
    chosen = logits.topk(top_k, dim=1).indices
    routed = torch.zeros_like(logits).scatter(1, chosen, 1.0)
    probs = torch.softmax(logits, dim=1) * routed
    return logits.shape[1] * (routed.mean(0) * probs.mean(0)).sum()


def _balance_forbidden(logits, top_k):
    return mlh.load_balancing_loss(logits, top_k=top_k)


# ------------------------------------------------------------------ k3
def _k3(logp, logp_ref):
    log_rho = logp_ref - logp
    return (torch.expm1(log_rho) - log_rho).mean()


def _k3_upside_down(logp, logp_ref):
    log_rho = logp - logp_ref
    return (torch.expm1(log_rho) - log_rho).mean()


def _k3_is_k1(logp, logp_ref):
    return (logp - logp_ref).mean()


def _k3_probability_ratio(logp, logp_ref):  # exp(-800) underflows to 0
    rho = logp_ref.exp() / logp.exp()
    return (rho - 1 - rho.log()).mean()


def _k3_summed(logp, logp_ref):
    log_rho = logp_ref - logp
    return (torch.expm1(log_rho) - log_rho).sum()


def _k3_half_detached(logp, logp_ref):  # the right value, the wrong gradient
    log_rho = logp_ref - logp
    return (torch.expm1(log_rho.detach()) - log_rho).mean()


# ------------------------------------------------------------------ investigation
def _setup():
    g = torch.Generator().manual_seed(3)
    return torch.randn(20, generator=g).log_softmax(0), torch.randn(20, generator=g)


def _measured(slip="right"):
    def call(check):
        log_ref, reward = _setup()
        found = {b: ch20._k2_bias(log_ref, reward, b)[slip] for b in ch20.BETAS}
        return check(found, log_ref, reward)

    return call


def _reported(biases):
    def call(check):
        log_ref, reward = _setup()
        return check(biases(log_ref, reward), log_ref, reward)

    return call


CASES = [
    right("check_balancing_loss", _balance_right),
    wrong("check_balancing_loss", _balance_over_k_t, "divided by top_k"),
    wrong("check_balancing_loss", _balance_no_e, "misses a factor"),
    wrong("check_balancing_loss", _balance_detached, "has no graph"),
    wrong("check_balancing_loss", _balance_probs_of_chosen, "your value is wrong"),
    wrong("check_balancing_loss", _balance_forbidden, "mlh.load_balancing_loss"),
    stub("check_balancing_loss"),
    right("check_kl_k3", _k3),
    wrong("check_kl_k3", _k3_upside_down, "upside down"),
    wrong("check_kl_k3", _k3_is_k1, "(k1)"),
    wrong("check_kl_k3", _k3_probability_ratio, "not finite"),
    wrong("check_kl_k3", _k3_summed, "the sum, not the mean"),
    wrong("check_kl_k3", _k3_half_detached, "the gradient of your estimate"),
    stub("check_kl_k3"),
    finding("check_k2_bias", _measured(), label="measured"),
    finding("check_k2_bias", _measured("absolute"), "relative to the KL", label="absolute"),
    finding("check_k2_bias", _measured("unweighted"), "uniformly", label="unweighted"),
    finding("check_k2_bias", _measured("reverse"), "KL(reference || policy)", label="reverse"),
    finding("check_k2_bias", _measured("sign"), "sign is flipped", label="sign"),
    finding(
        "check_k2_bias",
        _reported(lambda lr, r: {b: 0.1 for b in (0.3, 1.0, 3.0)}),
        "missing from your dict",
        label="missing beta",
    ),
    finding(
        "check_k2_bias",
        _reported(lambda lr, r: [0.1, 0.2, 0.3, 0.4]),
        "report a dict",
        label="not a dict",
    ),
    finding(
        "check_k2_bias",
        _reported(lambda lr, r: stub_answer),
        "report a dict {beta: relative bias}, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_the_relative_bias_of_k2_is_small_near_the_reference_only():
    log_ref, reward = _setup()
    biases = {b: ch20._k2_bias(log_ref, reward, b)["right"] for b in (0.1, 100.0)}
    assert abs(biases[100.0]) < 0.01 < abs(biases[0.1])
