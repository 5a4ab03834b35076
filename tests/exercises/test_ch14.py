"""Chapter 14's checks: right answers pass, typical GAN mistakes fail with their hint, a stub
stops.

The wrong answers are the mistakes the chapter shows: no detach in the discriminator's step,
no zeroing of gradients between the players' steps, the saturating generator loss, swapped
labels, a discriminator that is not frozen (or stays frozen), and numerically naive losses.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

import multiloss_helpers as mlh

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("softplus", "logsigmoid", ".detach()", "requires_grad_(", "zero_grad(")


def _bce(logits, label):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def _d_step(detach=True, zero=True, swap=False, step=True, no_grad=False):
    def fn(G, D, opt_d, real, z):
        if no_grad:
            with torch.no_grad():
                fake = G(z)
        else:
            fake = G(z).detach() if detach else G(z)
        if zero:
            opt_d.zero_grad()
        real_label, fake_label = (0.0, 1.0) if swap else (1.0, 0.0)
        loss = _bce(D(real), real_label) + _bce(D(fake), fake_label)
        loss.backward()
        if step:
            opt_d.step()
        return loss

    return fn


def _d_step_one_mean(G, D, opt_d, real, z):
    opt_d.zero_grad()
    logits = torch.cat([D(real), D(G(z).detach())])
    labels = torch.cat([torch.ones(len(real), 1), torch.zeros(len(z), 1)])
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    loss.backward()
    opt_d.step()
    return loss


def _d_step_hidden_leak(G, D, opt_d, real, z):
    """No detach, then the generator's gradients wiped: the backward still reached G."""
    loss = _d_step(detach=False)(G, D, opt_d, real, z)
    G.zero_grad(set_to_none=True)
    return loss


def _g_step(freeze=True, unfreeze=True, zero=True, saturating=False):
    def fn(G, D, opt_g, z):
        if zero:
            opt_g.zero_grad()
        D.requires_grad_(not freeze)
        logits = D(G(z))
        loss = -_bce(logits, 0.0) if saturating else _bce(logits, 1.0)
        loss.backward()
        opt_g.step()
        if unfreeze:
            D.requires_grad_(True)
        return loss

    return fn


def _g_step_then_wipe(G, D, opt_g, z):
    loss = _g_step(freeze=False)(G, D, opt_g, z)
    D.zero_grad(set_to_none=True)
    return loss


# ------------------------------------------------------------ the investigation
def _players_and_confident_discriminator(d_steps=100):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-2)
    real = mlh.make_ring_data(512, seed=0)["x"]
    g = torch.Generator().manual_seed(0)
    for _ in range(d_steps):
        opt_d.zero_grad()
        fake = G(torch.randn(128, 2, generator=g)).detach()
        (_bce(D(real[:128]), 1.0) + _bce(D(fake), 0.0)).backward()
        opt_d.step()
    return G, D, torch.randn(256, 2, generator=g)


def _norms(G, D, z):
    logits = D(G(z))
    losses = {"saturating": -_bce(logits, 0.0), "non-saturating": _bce(logits, 1.0)}
    norms, values = {}, {}
    for name, loss in losses.items():
        G.zero_grad()
        loss.backward(retain_graph=True)
        norms[name] = torch.cat([p.grad.flatten() for p in G.parameters()]).norm().item()
        values[name] = abs(loss.item())
    return norms, values


@functools.cache
def _measured_ratio() -> float:
    norms, _ = _norms(*_players_and_confident_discriminator())
    return norms["non-saturating"] / norms["saturating"]


def _ratio(answer, d_steps=100):
    """The check, run on ``answer(G, D, z)`` against a discriminator trained ``d_steps``."""

    def call(check):
        G, D, z = _players_and_confident_discriminator(d_steps)
        return check(answer(G, D, z), G, D, z)

    return call


def _loss_ratio(G, D, z):
    _, values = _norms(G, D, z)
    return values["non-saturating"] / values["saturating"]


def _norm_ratio(G, D, z):
    norms, _ = _norms(G, D, z)
    return norms["non-saturating"] / norms["saturating"]


NOT_IT = "not what the experiment gives"

CASES = [
    right("check_non_saturating_loss", lambda logits: F.softplus(-logits).mean()),
    wrong(
        "check_non_saturating_loss",
        lambda logits: -F.softplus(logits).mean(),
        "value is wrong",
        "saturating",
    ),
    wrong(
        "check_non_saturating_loss",
        lambda logits: -torch.log(torch.sigmoid(logits)).mean(),
        "not finite",
    ),
    wrong(
        "check_non_saturating_loss",
        lambda logits: F.softplus(logits).mean(),
        "value is wrong",
        "labels swapped",
    ),
    wrong(
        "check_non_saturating_loss",
        lambda logits: F.softplus(-logits).sum(),
        "your value is the sum, not the mean, of the per-element values",
        label="sum-for-mean",
    ),
    wrong("check_non_saturating_loss", lambda logits: _bce(logits, 1.0), "does not allow"),
    wrong(
        "check_non_saturating_loss",
        lambda logits: F.binary_cross_entropy(torch.sigmoid(logits), torch.ones_like(logits)),
        "does not allow",
    ),
    wrong(
        "check_non_saturating_loss", lambda logits: F.softplus(-logits.detach()).mean(), "no graph"
    ),
    wrong(
        "check_non_saturating_loss",
        lambda logits: F.softplus(-logits),
        "expected a scalar tensor",
    ),
    stub("check_non_saturating_loss"),
    right("check_discriminator_step", _d_step()),
    right("check_discriminator_step", _d_step(no_grad=True), "fakes made under no_grad"),
    wrong(
        "check_discriminator_step",
        _d_step(detach=False),
        "the generator's parameters received a gradient",
    ),
    wrong(
        "check_discriminator_step",
        _d_step_hidden_leak,
        "the generator's parameters received a gradient",
    ),
    wrong("check_discriminator_step", _d_step(zero=False), "earlier backward"),
    wrong("check_discriminator_step", _d_step(swap=True), "value is wrong"),
    wrong("check_discriminator_step", _d_step_one_mean, "value is wrong"),
    wrong("check_discriminator_step", _d_step(step=False), "did not change"),
    stub("check_discriminator_step"),
    right("check_generator_step", _g_step()),
    wrong(
        "check_generator_step",
        _g_step(freeze=False),
        "received a gradient during the generator's step",
    ),
    wrong(
        "check_generator_step",
        _g_step_then_wipe,
        "received a gradient during the generator's step",
    ),
    wrong("check_generator_step", _g_step(unfreeze=False), "no longer require gradients"),
    wrong("check_generator_step", _g_step(saturating=True), "value is wrong"),
    wrong("check_generator_step", _g_step(zero=False), "earlier backward"),
    stub("check_generator_step"),
    # the investigation: how much larger the non-saturating loss's gradient is
    finding("check_generator_gradient_ratio", _ratio(_norm_ratio), label="measured"),
    finding(
        "check_generator_gradient_ratio",
        _ratio(lambda G, D, z: torch.tensor(_norm_ratio(G, D, z))),
        label="a one-element tensor",
    ),
    finding(
        "check_generator_gradient_ratio",
        _ratio(lambda G, D, z: 1 / _norm_ratio(G, D, z)),
        NOT_IT,
        label="inverted",
    ),
    finding(
        "check_generator_gradient_ratio",
        _ratio(_loss_ratio),
        NOT_IT,
        label="ratio of the loss values",
    ),
    finding(
        "check_generator_gradient_ratio",
        _ratio(_norm_ratio, d_steps=0),
        "not confident",
        label="untrained discriminator",
    ),
    finding(
        "check_generator_gradient_ratio",
        _ratio(lambda G, D, z: [_norm_ratio(G, D, z)]),
        "report one number",
        label="a list",
    ),
    finding(
        "check_generator_gradient_ratio",
        _ratio(lambda G, D, z: stub_answer),
        "the ratio of the two gradient norms: report one number, got a function",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_the_non_saturating_gradient_is_the_larger_one():
    assert _measured_ratio() > 5
