"""The two-player chapter's checks: right answers pass, typical GAN mistakes fail with a hint.

The wrong answers are the mistakes the chapter shows: no detach in the discriminator's step,
no zeroing of gradients between the players' steps, the saturating generator loss, swapped
labels, a discriminator that is not frozen (or stays frozen), and numerically naive losses.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from exercise_cases import case_tests
from torch import nn

import multiloss_helpers as mlh
from multiloss_helpers import exercises as ex


def _bce(logits, label):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def _d_step(detach=True, zero=True, swap=False, step=True):
    def fn(G, D, opt_d, real, z):
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


CASES = {
    # check: (a right answer, [(a typical wrong answer, a stable part of its hint), ...])
    "check_non_saturating_loss": (
        lambda logits: F.softplus(-logits).mean(),
        [
            (lambda logits: -F.softplus(logits).mean(), "value is wrong"),  # saturating
            (lambda logits: -torch.log(torch.sigmoid(logits)).mean(), "not finite"),
            (lambda logits: F.softplus(logits).mean(), "value is wrong"),  # labels swapped
            (lambda logits: F.softplus(-logits).sum(), "value is wrong"),
            (lambda logits: _bce(logits, 1.0), "does not allow"),
            (
                lambda logits: F.binary_cross_entropy(
                    torch.sigmoid(logits), torch.ones_like(logits)
                ),
                "does not allow",
            ),
            (lambda logits: F.softplus(-logits.detach()).mean(), "no graph"),
            (lambda logits: F.softplus(-logits), "expected a scalar tensor"),
        ],
    ),
    "check_discriminator_step": (
        _d_step(),
        [
            (_d_step(detach=False), "the generator's parameters received a gradient"),
            (_d_step_hidden_leak, "the generator's parameters received a gradient"),
            (_d_step(zero=False), "earlier backward"),
            (_d_step(swap=True), "value is wrong"),
            (_d_step_one_mean, "value is wrong"),
            (_d_step(step=False), "did not change"),
        ],
    ),
    "check_generator_step": (
        _g_step(),
        [
            (_g_step(freeze=False), "received a gradient during the generator's step"),
            (_g_step_then_wipe, "received a gradient during the generator's step"),
            (_g_step(unfreeze=False), "no longer require gradients"),
            (_g_step(saturating=True), "value is wrong"),
            (_g_step(zero=False), "earlier backward"),
        ],
    ),
}


def test_every_check_of_the_chapter_is_tested_with_three_wrong_answers():
    assert set(CASES) | {"check_generator_gradient_ratio"} == set(ex.two_players.__all__)
    assert all(len(wrong) >= 3 for _, wrong in CASES.values())
    assert set(CASES) <= set(ex.__all__) and all(hasattr(mlh.exercises, n) for n in CASES)


(
    test_check_passes_a_right_answer,
    test_check_fails_a_typical_wrong_answer_with_a_hint,
    test_unfinished_stub_stops_with_not_implemented,
) = case_tests(CASES)


def test_forbidden_losses_are_restored_after_the_check():
    originals = (F.binary_cross_entropy_with_logits, F.binary_cross_entropy)
    ex.check_non_saturating_loss(lambda logits: _bce(logits, 1.0))
    assert originals == (F.binary_cross_entropy_with_logits, F.binary_cross_entropy)


def test_a_discriminator_step_with_no_grad_generation_passes(capsys):
    def fn(G, D, opt_d, real, z):
        with torch.no_grad():
            fake = G(z)
        opt_d.zero_grad()
        loss = _bce(D(real), 1.0) + _bce(D(fake), 0.0)
        loss.backward()
        opt_d.step()
        return loss

    assert ex.check_discriminator_step(fn)
    capsys.readouterr()


def test_hints_never_contain_the_solution(capsys):
    giveaways = ("softplus", "logsigmoid", ".detach()", "requires_grad_(", "zero_grad(")
    for name, (_, wrong) in CASES.items():
        for bad, _ in wrong:
            message = getattr(ex, name)(bad).message
            assert not any(word in message for word in giveaways), (name, message)
    capsys.readouterr()


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


def test_investigation_accepts_the_measured_ratio(capsys):
    G, D, z = _players_and_confident_discriminator()
    norms, _ = _norms(G, D, z)
    ratio = norms["non-saturating"] / norms["saturating"]
    assert ratio > 5
    assert ex.check_generator_gradient_ratio(ratio, G, D, z)
    assert ex.check_generator_gradient_ratio(torch.tensor(ratio), G, D, z)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        ("inverted", "not what the experiment gives"),
        ("ratio of the loss values", "not what the experiment gives"),
        ("untrained discriminator", "not confident"),
        ("a list", "report one number"),
    ],
)
def test_investigation_rejects_typical_wrong_findings(wrong, hint, capsys):
    G, D, z = _players_and_confident_discriminator()
    norms, values = _norms(G, D, z)
    ratio = norms["non-saturating"] / norms["saturating"]
    if wrong == "untrained discriminator":
        G, D, z = _players_and_confident_discriminator(d_steps=0)
        norms, _ = _norms(G, D, z)
    answers = {
        "inverted": 1 / ratio,
        "ratio of the loss values": values["non-saturating"] / values["saturating"],
        "untrained discriminator": norms["non-saturating"] / norms["saturating"],
        "a list": [ratio],
    }
    result = ex.check_generator_gradient_ratio(answers[wrong], G, D, z)
    assert not result and hint in result.message, result.message
    capsys.readouterr()
