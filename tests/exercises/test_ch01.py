"""Chapter 1's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The wrong answers include those a review found accepted by lenient checks: MSE under
no_grad, BCE with NaN gradients at +-1e4, and answers calling the function the exercise
forbids (even inside a ``try``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from multiloss_helpers.exercises import ch01_builtin_losses as ch01

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _mse(i, t, *, reduction="mean"):
    e = (i - t) ** 2
    return {"mean": e.mean(), "sum": e.sum(), "none": e}[reduction]


def _mse_no_grad(i, t, *, reduction="mean"):
    with torch.no_grad():
        return _mse(i, t, reduction=reduction)


def _mse_sneaky(i, t, *, reduction="mean"):
    """Calls the forbidden function and catches whatever it raises."""
    try:
        return F.mse_loss(i, t, reduction=reduction)
    except Exception:
        return _mse(i, t, reduction=reduction)


def _bce(z, t):
    return (F.softplus(z) - t * z).mean()


def _bce_naive(z, t):
    p = torch.sigmoid(z)
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()


def _bce_where(z, t):
    # finite values, but exp(+-1e4) overflows in the branch where() does not pick: NaN grads
    pos = z - t * z + torch.log1p(torch.exp(-z))
    neg = -t * z + torch.log1p(torch.exp(z))
    return torch.where(z > 0, pos, neg).mean()


@functools.cache
def _bce_limit() -> float:
    return ch01._bce_gradient_limit()


def _limit(offset: float = 0.0):
    return lambda check: check(_bce_limit() + offset)


CASES = [
    right("check_mean_squared_error", _mse),
    wrong(
        "check_mean_squared_error",
        lambda i, t, *, reduction="mean": F.mse_loss(i, t, reduction=reduction),
        "F.mse_loss",
    ),
    wrong("check_mean_squared_error", _mse_sneaky, "F.mse_loss", "forbidden call caught"),
    wrong("check_mean_squared_error", _mse_no_grad, "no graph"),
    wrong(
        "check_mean_squared_error",
        lambda i, t, *, reduction="mean": _mse(i, t, reduction="sum"),
        "the sum, not the mean, of the per-element values",
        label="sum-for-mean",
    ),
    wrong(
        "check_mean_squared_error",
        lambda i, t, *, reduction="mean": _mse(i, t, reduction="mean"),
        "reduction='sum' on inputs of shape (7,): your value is the mean",
        label="mean-for-sum",
    ),
    wrong(
        "check_mean_squared_error",
        lambda i, t, *, reduction="mean": (
            ((i - t) ** 2).sum() / len(i)
            if reduction == "mean"
            else _mse(i, t, reduction=reduction)
        ),
        "the sum divided by the batch size, not the mean, of the per-element values",
        label="batch-size-for-mean",
    ),
    wrong(
        "check_mean_squared_error",
        lambda i, t, *, reduction="mean": (i - t).abs().mean(),
        "reduction=",
    ),
    stub("check_mean_squared_error"),
    right("check_bce_with_logits", _bce),
    wrong(
        "check_bce_with_logits",
        lambda z, t: F.binary_cross_entropy_with_logits(z, t),
        "does not allow",
    ),
    wrong(
        "check_bce_with_logits",
        lambda z, t: F.binary_cross_entropy(torch.sigmoid(z), t),
        "does not allow",
    ),
    wrong("check_bce_with_logits", _bce_naive, "not finite"),
    wrong("check_bce_with_logits", _bce_where, "gradient is not"),
    wrong("check_bce_with_logits", lambda z, t: _bce(z.detach(), t), "no graph"),
    wrong(
        "check_bce_with_logits",
        lambda z, t: _bce(z, t) * len(z),
        "the sum, not the mean, of the per-element values",
        label="sum-for-mean",
    ),
    stub("check_bce_with_logits"),
    # the investigation: the most negative logit where BCE's gradient is still right
    finding("check_bce_gradient_limit", _limit(), label="measured"),
    finding("check_bce_gradient_limit", _limit(0.1), label="measured+0.1"),
    finding("check_bce_gradient_limit", _limit(-0.2), label="measured-0.2"),
    finding(
        "check_bce_gradient_limit",
        lambda check: check(torch.tensor(_bce_limit())),
        label="a one-element tensor",
    ),
    # where the loss value saturates, and where sigmoid underflows to 0 in float32
    finding("check_bce_gradient_limit", lambda c: c(-100.0), "saturates", label="-100"),
    finding("check_bce_gradient_limit", lambda c: c(-103.3), "saturates", label="-103.3"),
    # where sigmoid becomes subnormal
    finding("check_bce_gradient_limit", lambda c: c(-88.0), "further from 0", label="-88"),
    # "it is always right" read the wrong way round
    finding("check_bce_gradient_limit", lambda c: c(0.0), "below", label="0"),
    finding("check_bce_gradient_limit", lambda c: c(-10.0), "closer to 0", label="eyeballed"),
    finding("check_bce_gradient_limit", lambda c: c(float("nan")), "finite", label="nan"),
    finding("check_bce_gradient_limit", lambda c: c("about -27"), "one number", label="text"),
    finding("check_bce_gradient_limit", lambda c: c([-27.6]), "one number", label="a list"),
    finding(
        "check_bce_gradient_limit",
        lambda check: check(stub_answer),
        "`gradient_limit` should be one number, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_bce_limit_lies_between_the_gradient_clamp_and_zero():
    # the loss value is exact down to -100; the gradient fails far earlier
    assert -40.0 < _bce_limit() < -10.0
