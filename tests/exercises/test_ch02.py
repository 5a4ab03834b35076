"""Chapter 2's checks: right answers pass, typical wrong ones fail with their hint, a stub stops."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cases import right, stub, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _per_sample_naive(x, t):
    return -torch.log(torch.softmax(x, 1).gather(1, t[:, None]).squeeze(1))


CASES = [
    right("check_weighted_epoch_mean", lambda m, n: sum(a * b for a, b in zip(m, n)) / sum(n)),
    wrong("check_weighted_epoch_mean", lambda m, n: sum(m) / len(m), "every sample"),
    wrong("check_weighted_epoch_mean", lambda m, n: sum(m), "every sample"),
    wrong(
        "check_weighted_epoch_mean",
        lambda m, n: sum(a * b for a, b in zip(m, n)) / len(n),
        "every sample",
    ),
    stub("check_weighted_epoch_mean"),
    right("check_per_sample_losses", lambda x, t: F.cross_entropy(x, t, reduction="none")),
    wrong(
        "check_per_sample_losses",
        lambda x, t: F.cross_entropy(x, t),
        "one loss per sample, shape (12,); got a torch.float32 tensor of shape () (your value "
        "is the mean of the values: one per element is asked)",
        label="mean-for-none",
    ),
    wrong(
        "check_per_sample_losses",
        lambda x, t: F.cross_entropy(x, t, reduction="sum"),
        "(your value is the sum of the values: one per element is asked)",
        label="sum-for-none",
    ),
    wrong(
        "check_per_sample_losses",
        lambda x, t: F.nll_loss(x, t, reduction="none"),
        "value is wrong",
    ),
    wrong("check_per_sample_losses", _per_sample_naive, "not finite"),
    wrong(
        "check_per_sample_losses",
        lambda x, t: F.cross_entropy(x.detach(), t, reduction="none"),
        "no graph",
    ),
    stub("check_per_sample_losses"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
