"""Chapter 9's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The wrong answers include focal losses with NaN gradients at gamma < 1 (the modulating
factor computed from a probability that rounds to 1), and the library's own losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import multiloss_helpers as mlh

from .cases import right, stub, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _focal_b(z, t, alpha, gamma):
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    s = z * (2 * t - 1)  # the logit of the true class
    loss = torch.exp(gamma * F.logsigmoid(-s)) * ce  # (1 - p_t) ** gamma in log space
    return (loss if alpha is None else (alpha * t + (1 - alpha) * (1 - t)) * loss).mean()


def _focal_b_naive(z, t, alpha, gamma):
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    p = torch.sigmoid(z)
    loss = (1 - (p * t + (1 - p) * (1 - t))) ** gamma * ce
    return (loss if alpha is None else (alpha * t + (1 - alpha) * (1 - t)) * loss).mean()


def _focal_m(logits, target, gamma):
    log_p = torch.log_softmax(logits, 1)
    log_pt = log_p.gather(1, target[:, None]).squeeze(1)
    others = log_p.masked_fill(F.one_hot(target, logits.shape[1]).bool(), float("-inf"))
    return (-torch.exp(gamma * torch.logsumexp(others, 1)) * log_pt).mean()


def _focal_m_naive(logits, target, gamma):
    log_pt = torch.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()


def _focal_m_of_the_top_class(x, t, g):
    p_top = torch.softmax(x, 1).max(1).values
    return (-((1 - p_top) ** g) * torch.log_softmax(x, 1).gather(1, t[:, None]).squeeze(1)).mean()


CASES = [
    right("check_binary_focal", _focal_b),
    wrong("check_binary_focal", _focal_b_naive, "gradient is not"),
    wrong(
        "check_binary_focal",
        lambda z, t, a, g: (a if a is not None else 1.0) * _focal_b(z, t, None, g),
        "alpha_t depends on each element's target",
        label="constant-alpha",
    ),
    wrong(
        "check_binary_focal",
        lambda z, t, a, g: _focal_b(z, t, a, g) * z.numel(),
        "the sum, not the mean, of the per-element values",
        label="sum-for-mean",
    ),
    wrong("check_binary_focal", lambda z, t, a, g: _focal_b(z, t, a, 0.0), "gamma=2.0"),
    wrong(
        "check_binary_focal",
        lambda z, t, a, g: mlh.binary_focal_loss(z, t, alpha=a, gamma=g),
        "mlh.binary_focal_loss",
    ),
    wrong("check_binary_focal", lambda z, t, a, g: _focal_b(z.detach(), t, a, g), "no graph"),
    stub("check_binary_focal"),
    right("check_multiclass_focal", _focal_m),
    wrong("check_multiclass_focal", _focal_m_naive, "gradient is not"),
    wrong("check_multiclass_focal", lambda x, t, g: F.cross_entropy(x, t), "gamma=0.5"),
    wrong(
        "check_multiclass_focal",
        lambda x, t, g: mlh.focal_loss(x, t, gamma=g),
        "mlh.focal_loss",
    ),
    wrong("check_multiclass_focal", _focal_m_of_the_top_class, "value is wrong"),
    wrong(
        "check_multiclass_focal",
        lambda x, t, g: _focal_m(x, t, g) * len(t),
        "the sum, not the mean, of the per-element values",
        label="sum-for-mean",
    ),
    stub("check_multiclass_focal"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
