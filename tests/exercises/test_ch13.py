"""Chapter 13's checks: right answers pass, typical wrong ones fail with their hint, a stub
stops."""

from __future__ import annotations

import pytest
import torch
import torch.distributions
import torch.nn.functional as F

import multiloss_helpers as mlh

from .cases import right, stub, table_tests, wrong

# one wrong answer uses kl_div's element mean, which PyTorch warns about
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")

GIVEAWAYS = ("expm1", "batchmean", "T**2", "log_softmax", ".detach()")


def _kl(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar).flatten(1).sum(1).mean()


def _kl_through_variance(mu, logvar):
    var = logvar.exp()
    return 0.5 * (mu**2 + var - 1 - var.log()).flatten(1).sum(1).mean()


def _kl_torch(mu, logvar):
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).flatten(1).sum(1).mean()


def _kl_elements(mu, logvar):
    return 0.5 * (mu**2 + logvar.exp() - 1 - logvar)


def _free_bits(mu, logvar, free_bits):
    return _kl_elements(mu, logvar).mean(0).clamp(min=free_bits).sum()


def _soft(s, t, temperature, reduction="batchmean", detach=True):
    t = t.detach() if detach else t
    return F.kl_div(
        F.log_softmax(s / temperature, dim=1),
        F.log_softmax(t / temperature, dim=1),
        log_target=True,
        reduction=reduction,
    )


def _distill(s, t, y, temperature, alpha, **kw):
    hard = F.cross_entropy(s, y)
    return alpha * temperature**2 * _soft(s, t, temperature, **kw) + (1 - alpha) * hard


def _distill_swapped(s, t, y, temperature, alpha):
    p_s = F.log_softmax(s / temperature, dim=1)
    p_t = F.log_softmax(t.detach() / temperature, dim=1)
    soft = F.kl_div(p_t, p_s, log_target=True, reduction="batchmean")
    return alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(s, y)


CASES = [
    right("check_gaussian_kl", _kl),
    wrong(
        "check_gaussian_kl",
        lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).mean(),
        "adds up its dimensions",
    ),
    wrong(
        "check_gaussian_kl",
        lambda mu, lv: (mu**2 + lv.exp() - 1 - lv).flatten(1).sum(1).mean(),
        "(6, 4)",
    ),
    wrong("check_gaussian_kl", _kl_through_variance, "logvar = -1e4"),
    wrong("check_gaussian_kl", lambda mu, lv: _kl(mu, lv.detach()), "does not reach every input"),
    wrong(
        "check_gaussian_kl",
        lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 + lv).flatten(1).sum(1).mean(),
        "(6, 4)",
    ),
    wrong("check_gaussian_kl", lambda mu, lv: mlh.gaussian_kl(mu, lv), "mlh.gaussian_kl"),
    wrong("check_gaussian_kl", _kl_torch, "torch.distributions"),
    wrong(
        "check_gaussian_kl",
        lambda mu, lv: 0.5 * (mu**2 + lv.exp() - 1 - lv).flatten(1).sum(1).sum(),
        "your value is the sum, not the mean, of the per-element values",
        label="sum-for-mean",
    ),
    stub("check_gaussian_kl"),
    right("check_free_bits_kl", _free_bits),
    wrong(
        "check_free_bits_kl",
        lambda mu, lv, lam: _kl_elements(mu, lv).clamp(min=lam).mean(0).sum(),
        "free_bits=0.5",
    ),
    wrong(
        "check_free_bits_kl",
        lambda mu, lv, lam: _kl_elements(mu, lv).mean(0).sum().clamp(min=lam),
        "free_bits=0.5",
    ),
    wrong(
        "check_free_bits_kl",
        lambda mu, lv, lam: _kl_elements(mu, lv).sum(0).clamp(min=lam).sum(),
        "free_bits=0.0",
    ),
    wrong(
        "check_free_bits_kl",
        lambda mu, lv, lam: _free_bits(mu, lv, lam).detach(),
        "has no graph",
    ),
    wrong(
        "check_free_bits_kl",
        lambda mu, lv, lam: _kl_elements(mu, lv).mean(0).sum(),
        "free_bits=0.5",
    ),
    stub("check_free_bits_kl"),
    right("check_distillation", _distill),
    wrong(
        "check_distillation",
        lambda s, t, y, T, a: _distill(s, t, y, T, a, detach=False),
        "teacher's logits",
    ),
    wrong(
        "check_distillation",
        lambda s, t, y, T, a: a * _soft(s, t, T) + (1 - a) * F.cross_entropy(s, y),
        "temperature=4.0, alpha=1.0",
    ),
    wrong(
        "check_distillation",
        lambda s, t, y, T, a: _distill(s, t, y, T, a, reduction="mean"),
        "temperature=1.0, alpha=1.0",
    ),
    wrong("check_distillation", _distill_swapped, "temperature=1.0, alpha=1.0"),
    wrong(
        "check_distillation",
        lambda s, t, y, T, a: _distill(s, t, y, T, 1 - a),
        "temperature=1.0, alpha=0.0",
    ),
    wrong(
        "check_distillation",
        lambda s, t, y, T, a: mlh.distillation_loss(s, t, y, temperature=T, alpha=a),
        "mlh.",
    ),
    stub("check_distillation"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
