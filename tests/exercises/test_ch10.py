"""Chapter 10's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The wrong answers include detached log-variances (the uncertainty weights never learn) and
PCGrad projected against an already projected gradient.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

import multiloss_helpers as mlh

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _pc2(g1, g2):
    d = g1 @ g2
    if d >= 0:
        return g1 + g2
    return (g1 - d / (g2 @ g2) * g2) + (g2 - d / (g1 @ g1) * g1)


def _pc2_sequential(g1, g2):
    d = g1 @ g2
    if d >= 0:
        return g1 + g2
    p1 = g1 - d / (g2 @ g2) * g2
    return p1 + (g2 - (g2 @ p1) / (p1 @ p1) * p1)


@functools.cache
def _setup():
    data = mlh.make_multitask_data(128, n_features=8, n_classes=3, seed=0)
    model = mlh.MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=0)
    return model, data


def _ratio(model, batch, k, params=None, scale_prediction=False, invert=False):
    out = model(batch["x"])
    reg = 1.0 * out["reg"]
    target = batch["y_reg"]
    mse = F.mse_loss(k * reg, target) if scale_prediction else F.mse_loss(reg, k * target)
    ce = F.cross_entropy(out["cls"], batch["y_cls"])
    params = list(params if params is not None else model.shared_parameters())

    def norm(loss):
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return torch.cat([g.flatten() for g in grads if g is not None]).norm()

    value = norm(mse) / norm(ce)
    return float(1 / value if invert else value)


KS = (1, 3, 10, 30)


def _ratios(ratios):
    """The check, run on the ratios that ``ratios(model, batch)`` measures."""

    def call(check):
        model, batch = _setup()
        return check(ratios(model, batch), model, batch)

    return call


CASES = [
    right("check_pcgrad_two", _pc2),
    wrong("check_pcgrad_two", lambda g1, g2: g1 + g2, "other's original"),
    wrong(
        "check_pcgrad_two",
        lambda g1, g2: _pc2(g1, g2) if g1 @ g2 < 0 else g1 - g2,
        "without a conflict",
    ),
    wrong("check_pcgrad_two", _pc2_sequential, "other's original"),
    wrong("check_pcgrad_two", lambda g1, g2: mlh.pcgrad(torch.stack([g1, g2])), "mlh.pcgrad"),
    stub("check_pcgrad_two"),
    right("check_uncertainty_total", lambda L, s: (0.5 * torch.exp(-s) * L + 0.5 * s).sum()),
    wrong(
        "check_uncertainty_total",
        lambda L, s: (0.5 * torch.exp(-s.detach()) * L + 0.5 * s.detach()).sum(),
        "reach",
    ),
    wrong("check_uncertainty_total", lambda L, s: (0.5 * torch.exp(-s) * L).sum(), "regulariser"),
    wrong(
        "check_uncertainty_total",
        lambda L, s: (0.5 * torch.exp(s) * L + 0.5 * s).sum(),
        "regulariser",
    ),
    wrong(
        "check_uncertainty_total",
        lambda L, s: mlh.UncertaintyWeighting(len(L))(L),
        "mlh.UncertaintyWeighting",
    ),
    stub("check_uncertainty_total"),
    # the investigation: the gradient-norm ratio of the two losses on the shared trunk
    finding(
        "check_gradient_scale",
        _ratios(lambda model, batch: {k: _ratio(model, batch, k) for k in KS}),
        label="measured",
    ),
    finding(
        "check_gradient_scale",
        _ratios(lambda model, batch: {k: _ratio(model, batch, k, invert=True) for k in KS}),
        "is off",
        label="inverted",
    ),
    finding(
        "check_gradient_scale",
        _ratios(
            lambda model, batch: {k: _ratio(model, batch, k, params=model.parameters()) for k in KS}
        ),
        "is off",
        label="all parameters",
    ),
    finding(
        "check_gradient_scale",
        _ratios(
            lambda model, batch: {k: _ratio(model, batch, k, scale_prediction=True) for k in KS}
        ),
        "is off",
        label="prediction scaled",
    ),
    finding(
        "check_gradient_scale",
        _ratios(lambda model, batch: {k: _ratio(model, batch, k) for k in (1, 3, 10)}),
        "at least k = 1, 3, 10 and 30",
        label="missing k",
    ),
    finding(
        "check_gradient_scale",
        _ratios(lambda model, batch: {k: -_ratio(model, batch, k) for k in KS}),
        "positive number",
        label="negative",
    ),
    finding(
        "check_gradient_scale",
        _ratios(lambda model, batch: stub_answer),
        "report a dict {k: ratio} for at least k = 1, 3, 10 and 30, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
