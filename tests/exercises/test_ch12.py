"""Chapter 12's checks: right answers pass, typical wrong ones fail with their hint, a stub
stops."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import multiloss_helpers as mlh
from multiloss_helpers.exercises import ch12_regularisers_auxiliary as ch12

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("half", "1/2", "log_softmax", "dim() >= 2", "ndim")


# ------------------------------------------------------------------ L2 penalty
def _weights(model):
    return [p for p in model.parameters() if p.dim() >= 2]


def _l2(model):
    return 0.5 * sum(p.square().sum() for p in _weights(model))


def _l2_with_biases(model):
    return 0.5 * sum(p.square().sum() for p in model.parameters())


def _l2_without_half(model):
    return sum(p.square().sum() for p in _weights(model))


def _l2_data(model):
    return 0.5 * sum(p.data.square().sum() for p in _weights(model))


def _l2_of_gradients(model):
    return 0.5 * sum(p.grad.square().sum() for p in model.parameters())


def _l2_norm_not_squared(model):
    return sum(p.norm() for p in _weights(model))


def _l2_matrices_only(model):  # misses the Conv1d's 3-D weight
    return 0.5 * sum(p.square().sum() for p in model.parameters() if p.dim() == 2)


def _l2_forbidden(model):
    return mlh.l2_penalty(model)


# ------------------------------------------------------------------ confidence penalty
def _confidence(z, t, beta):
    log_p = F.log_softmax(z, 1)
    return F.cross_entropy(z, t) + beta * (log_p.exp() * log_p).sum(1).mean()


def _confidence_wrong_sign(z, t, beta):
    log_p = F.log_softmax(z, 1)
    return F.cross_entropy(z, t) - beta * (log_p.exp() * log_p).sum(1).mean()


def _confidence_naive_log(z, t, beta):
    p = z.softmax(1)
    return F.cross_entropy(z, t) + beta * (p * p.log()).sum(1).mean()


def _confidence_summed(z, t, beta):
    log_p = F.log_softmax(z, 1)
    return F.cross_entropy(z, t) + beta * (log_p.exp() * log_p).sum()


def _confidence_detached(z, t, beta):
    log_p = F.log_softmax(z.detach(), 1)
    return F.cross_entropy(z, t) + beta * (log_p.exp() * log_p).sum(1).mean()


def _confidence_forbidden(z, t, beta):
    return F.cross_entropy(z, t) - beta * mlh.predictive_entropy(z)


# ------------------------------------------------------------------ investigation
def _clip_setup():
    model = mlh.MultiHeadNet(8, {"cls": 4, "reg": 1}, hidden=(32, 32), seed=0)
    batch = mlh.make_multitask_data(128, n_features=8, n_classes=4, seed=0)
    return model, batch


def _clip_factor(model, batch, k, max_norm=5.0, cls_only=False, clamp=True, invert=False):
    model.zero_grad()
    out = model(batch["x"])
    ce = F.cross_entropy(out["cls"], batch["y_cls"])
    loss = ce if cls_only else ce + F.mse_loss(out["reg"], k * batch["y_reg"])
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm).item()
    factor = norm / max_norm if invert else max_norm / norm
    return min(1.0, factor) if clamp else factor


KS = (1, 3, 10, 30)


def _factors(factors):
    """The check, run on the factors that ``factors(model, batch)`` measures."""

    def call(check):
        model, batch = _clip_setup()
        return check(factors(model, batch), model, batch, max_norm=5.0)

    return call


CASES = [
    right("check_l2_penalty", _l2),
    wrong("check_l2_penalty", _l2_with_biases, "biases or the normalisation weights"),
    wrong("check_l2_penalty", _l2_without_half, "twice the weight"),
    wrong("check_l2_penalty", _l2_data, "has no graph"),
    wrong("check_l2_penalty", _l2_of_gradients, "from the gradients"),
    wrong("check_l2_penalty", _l2_norm_not_squared, "should be the weight itself"),
    wrong("check_l2_penalty", _l2_matrices_only, "does not reach every input"),
    wrong("check_l2_penalty", _l2_forbidden, "mlh.l2_penalty"),
    stub("check_l2_penalty"),
    right("check_confidence_penalty", _confidence),
    wrong("check_confidence_penalty", _confidence_wrong_sign, "lowers the entropy"),
    wrong("check_confidence_penalty", _confidence_naive_log, "not finite"),
    wrong("check_confidence_penalty", _confidence_summed, "grows with the batch size"),
    wrong("check_confidence_penalty", _confidence_detached, "gradient of your loss"),
    wrong("check_confidence_penalty", _confidence_forbidden, "mlh.predictive_entropy"),
    stub("check_confidence_penalty"),
    # the investigation: the factor by which clipping scales the summed gradient
    finding(
        "check_clip_factor",
        _factors(lambda model, batch: {k: _clip_factor(model, batch, k) for k in KS}),
        label="measured",
    ),
    finding(
        "check_clip_factor",
        _factors(lambda m, b: {k: _clip_factor(m, b, k, cls_only=True) for k in KS}),
        "is off",
        label="classification only",
    ),
    finding(
        "check_clip_factor",
        _factors(lambda m, b: {k: _clip_factor(m, b, k, clamp=False) for k in KS}),
        "number in (0, 1]",
        label="not clamped",
    ),
    finding(
        "check_clip_factor",
        _factors(lambda m, b: {k: _clip_factor(m, b, k, invert=True) for k in KS}),
        "is off",
        label="inverted",
    ),
    finding(
        "check_clip_factor",
        _factors(lambda m, b: {k: _clip_factor(m, b, k, max_norm=1.0) for k in KS}),
        "is off",
        label="another max_norm",
    ),
    finding(
        "check_clip_factor",
        _factors(lambda m, b: {k: _clip_factor(m, b, k) for k in (1, 3, 10, 20)}),
        "missing from your dict",
        label="missing k",
    ),
    finding(
        "check_clip_factor",
        _factors(lambda m, b: [_clip_factor(m, b, k) for k in KS]),
        "report a dict",
        label="not a dict",
    ),
    finding(
        "check_clip_factor",
        _factors(lambda m, b: stub_answer),
        "report a dict {k: factor} with at least four target scales, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_the_right_l2_answer_matches_sgd_weight_decay():
    """What the check's gradient test stands for: the same steps as weight_decay."""
    model_a, model_b = (ch12._l2_models()[0][1] for _ in range(2))
    x, y = torch.randn(8, 5), torch.randint(3, (8,))
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(mlh.weight_decay_groups(model_b, 0.3), lr=0.1)
    for _ in range(3):
        opt_a.zero_grad()
        (F.cross_entropy(model_a(x), y) + 0.3 * _l2(model_a)).backward()
        opt_a.step()
        opt_b.zero_grad()
        F.cross_entropy(model_b(x), y).backward()
        opt_b.step()
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(a, b)


def test_the_clip_setting_bites_at_large_k_only():
    model, batch = _clip_setup()
    factors = {k: _clip_factor(model, batch, k) for k in KS}
    assert factors[1] == 1.0 and factors[30] < 0.2
