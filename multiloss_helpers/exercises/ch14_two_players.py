r"""Checks for the exercises of chapter 14, *Two players: a GAN with two losses and two
optimisers*."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    count_backward,
    describe,
    expect,
    expect_close,
    expect_grads,
    expect_number,
    forbid,
    gen,
    run_check,
    verdict,
)

__all__ = [
    "check_discriminator_step",
    "check_generator_gradient_ratio",
    "check_generator_step",
    "check_non_saturating_loss",
]


_LR = 0.1


def _reference_loss(fake_logits: Tensor) -> Tensor:
    """The mean non-saturating generator loss, -log sigmoid(logit), stable for any logit."""
    return F.softplus(-fake_logits).mean()


def _discriminator_reference(D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    real_logits, fake_logits = D(real), D(fake)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def check_non_saturating_loss(fn: Callable[[Tensor], Tensor]) -> CheckResult:
    r"""``fn(fake_logits)`` is the mean over the batch of :math:`-\log \sigma(\ell)`, the
    non-saturating generator loss of Goodfellow et al. 2014, for logits of any shape.

    Checked on moderate logits of shapes ``(N, 1)`` and ``(N,)`` and on a confident
    discriminator (logits down to -1e4 and up to 1e4): the value and the gradient must be
    finite and equal to the reference's. ``F.binary_cross_entropy_with_logits`` and
    ``F.binary_cross_entropy`` are not allowed.
    """

    def trials() -> None:
        g = gen(14)
        cases = [
            ("moderate logits of shape (16, 1)", 2 * torch.randn(16, 1, generator=g)),
            ("moderate logits of shape (24,)", 3 * torch.randn(24, generator=g)),
            (
                "a confident discriminator (logits from -1e4 to 1e4)",
                torch.tensor([-1e4, -200.0, -40.0, -12.0, 0.0, 15.0, 1e4]),
            ),
            ("logits all near -30 (fakes rejected)", -30 + torch.randn(8, generator=g)),
        ]
        forbidden = ((F, "binary_cross_entropy_with_logits"), (F, "binary_cross_entropy"))
        for where, logits in cases:
            ref = logits.clone().requires_grad_(True)
            want = _reference_loss(ref)
            (want_grad,) = torch.autograd.grad(want, ref)
            mine = logits.clone().requires_grad_(True)
            with forbid(*forbidden):
                got = fn(mine)
            expect(
                isinstance(got, Tensor) and got.numel() == 1,
                f"for {where} expected a scalar tensor (the mean over the batch), "
                f"got {describe(got)}",
            )
            expect_close(
                got.reshape(()),
                want.detach(),
                f"for {where} the loss",
                rtol=1e-4,
                elements=F.softplus(-logits),
            )
            expect_grads(got, [mine], [want_grad], f"your loss for {where}", rtol=1e-3)

    return run_check(
        "non_saturating_loss",
        fn,
        trials,
        "-log D(G(z)): right values and gradients, finite for confident discriminators",
    )


def _players(seed: int) -> tuple[nn.Module, nn.Module]:
    """A tiny generator (2 -> 2) and discriminator (2 -> 1), seeded."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 2))
    D = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    return G, D


def _vector(module: nn.Module) -> Tensor:
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().clone()


def _fill_grads(module: nn.Module, seed: int) -> Tensor:
    """Put gradients into ``module``'s ``.grad`` as an earlier backward would; return them."""
    g = gen(seed)
    grads = []
    for p in module.parameters():
        p.grad = torch.randn(p.shape, generator=g)
        grads.append(p.grad.flatten())
    return torch.cat(grads)


def _compare_step(after: Tensor, before: Tensor, grad: Tensor, stale: Tensor, who: str) -> None:
    """``after`` should be one SGD step ``before - lr * grad``; name the usual mistakes."""
    expect(
        not torch.equal(after, before),
        f"the {who}'s parameters did not change: the step should update them",
    )
    expect(
        not torch.allclose(after, before - _LR * (grad + stale), rtol=1e-4, atol=1e-6),
        f"the {who}'s step used gradients left in its .grad by an earlier backward",
    )
    expect(
        torch.allclose(after, before - _LR * grad, rtol=1e-4, atol=1e-6),
        f"the {who}'s step went in the wrong direction: its gradient is not the one of the "
        "loss the exercise asks for",
    )


def _expect_loss_and_step(
    got: object,
    want: Tensor,
    n: int,
    after: Tensor,
    before: Tensor,
    grad: Tensor,
    stale: Tensor,
    who: str,
) -> None:
    """The returned loss is the right scalar, and the player took one plain SGD step."""
    expect(
        isinstance(got, Tensor) and got.numel() == 1,
        f"return the {who}'s loss as a scalar tensor, got {describe(got)}",
    )
    expect_close(
        cast(Tensor, got).detach().reshape(()),
        want.detach(),
        f"with {n} samples, the loss you returned",
        rtol=1e-4,
    )
    _compare_step(after, before, grad, stale, who)


def check_discriminator_step(fn: Callable[..., Tensor]) -> CheckResult:
    r"""``fn(G, D, opt_d, real, z)``: one step of ``opt_d`` on the discriminator's binary
    cross-entropy, label 1 on ``real`` and 0 on ``G(z)`` (each term a mean, the two added);
    returns the loss.

    The check gives ``D`` stale gradients (as an earlier backward would) and ``G`` none,
    and uses plain SGD, so the step must equal ``-lr`` times the gradient of the loss alone;
    the generator must receive no gradient at all (a hook counts the backward passes that
    reach it) and must not change.
    """

    def trials() -> None:
        for seed, n in ((0, 16), (1, 5)):
            G, D = _players(seed)
            g = gen(100 + seed)
            real = torch.randn(n, 2, generator=g) + 2
            z = torch.randn(n, 2, generator=g)
            reference = copy.deepcopy(D)
            want = _discriminator_reference(reference, real, G(z).detach())
            grads = torch.autograd.grad(want, list(reference.parameters()))
            grad = torch.cat([w.flatten() for w in grads])
            before_d, before_g = _vector(D), _vector(G)
            stale = _fill_grads(D, seed)
            opt_d = torch.optim.SGD(D.parameters(), lr=_LR)
            with count_backward(list(G.parameters())) as reached:
                got = fn(G, D, opt_d, real.clone(), z.clone())
            expect(
                reached[0] == 0 and all(p.grad is None for p in G.parameters()),
                "the generator's parameters received a gradient from the discriminator's "
                "loss: the generated samples should be constants in this step",
            )
            expect(torch.equal(_vector(G), before_g), "the generator's parameters changed")
            _expect_loss_and_step(got, want, n, _vector(D), before_d, grad, stale, "discriminator")

    return run_check(
        "discriminator_step",
        fn,
        trials,
        "the discriminator steps on its own loss; the generator gets no gradient",
    )


def check_generator_step(fn: Callable[..., Tensor]) -> CheckResult:
    r"""``fn(G, D, opt_g, z)``: one step of ``opt_g`` on the non-saturating loss, the mean
    of :math:`-\log \sigma(D(G(z)))`; returns the loss.

    The check gives ``G`` stale gradients and ``D`` none, and uses plain SGD: the step must
    equal ``-lr`` times the gradient of the loss alone. The discriminator's weights must
    receive no gradient during the step (a hook counts them), must not change, and must
    require gradients again when ``fn`` returns.
    """

    def trials() -> None:
        for seed, n in ((2, 16), (3, 6)):
            G, D = _players(seed)
            z = torch.randn(n, 2, generator=gen(200 + seed))
            reference = copy.deepcopy(G)
            want = _reference_loss(D(reference(z)))
            grads = torch.autograd.grad(want, list(reference.parameters()))
            grad = torch.cat([w.flatten() for w in grads])
            D.zero_grad(set_to_none=True)
            before_d, before_g = _vector(D), _vector(G)
            stale = _fill_grads(G, seed)
            opt_g = torch.optim.SGD(G.parameters(), lr=_LR)
            with count_backward(list(D.parameters())) as reached:
                got = fn(G, D, opt_g, z.clone())
            expect(
                all(p.requires_grad for p in D.parameters()),
                "after your step the discriminator's parameters no longer require gradients: "
                "its own next step could not train it",
            )
            expect(
                reached[0] == 0 and all(p.grad is None for p in D.parameters()),
                "the discriminator's weights received a gradient during the generator's "
                "step: that is wasted work, left in their .grad",
            )
            expect(torch.equal(_vector(D), before_d), "the discriminator's parameters changed")
            _expect_loss_and_step(got, want, n, _vector(G), before_g, grad, stale, "generator")

    return run_check(
        "generator_step",
        fn,
        trials,
        "the generator steps on -log D(G(z)) through a frozen discriminator",
    )


# investigation: the learner reports a measured finding; the check reruns the experiment
def _gradient_norms(G: nn.Module, D: nn.Module, z: Tensor) -> tuple[float, float, float]:
    """The generator's gradient norms under the saturating and the non-saturating loss, and
    the discriminator's mean output on ``G(z)``."""
    logits = D(G(z))
    params = [p for p in G.parameters() if p.requires_grad]
    norms = []
    for loss in (-F.softplus(logits).mean(), F.softplus(-logits).mean()):
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        norms.append(float(torch.cat([g.flatten() for g in grads]).norm()))
    return norms[0], norms[1], float(torch.sigmoid(logits.detach()).mean())


def check_generator_gradient_ratio(
    ratio: Any, G: nn.Module, D: nn.Module, z: Tensor, *, rel_tol: float = 0.01
) -> CheckResult:
    r"""Investigation: ``ratio`` is the norm of the generator's gradient (over all of
    ``G``'s parameters) under the non-saturating loss, divided by its norm under the
    saturating loss, both means over the batch ``z``, for the discriminator ``D``.

    The check recomputes the ratio on ``G``, ``D`` and ``z`` and compares within
    ``rel_tol``; it also checks that ``D`` is confident (mean :math:`D(G(z)) < 0.1`),
    since the exercise asks for the ratio against a trained discriminator.
    """

    def trials() -> None:
        saturating, non_saturating, mean_d = _gradient_norms(G, D, z)
        expect(
            mean_d < 0.1,
            f"the discriminator you passed is not confident (mean D(G(z)) = {mean_d:.3f}): "
            "train it against the generator first, as the exercise says",
        )
        expect_number(
            ratio,
            non_saturating / saturating,
            "the ratio of the two gradient norms",
            rel_tol=rel_tol,
        )

    return verdict(
        "generator_gradient_ratio",
        trials,
        "the non-saturating loss gives the generator the larger gradient, as measured",
    )
