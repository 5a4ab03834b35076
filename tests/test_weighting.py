"""Weighting strategies: shared properties, exact small cases, bad inputs, repr."""

from __future__ import annotations

import math

import pytest
import torch
from weighting_properties import STRATEGIES, check_properties

import multiloss_helpers as mlh


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_shared_properties(name):
    weights_for, sums_to_t = STRATEGIES[name]
    check_properties(weights_for, sums_to_t)


class TestUncertainty:
    def test_formula_and_initial_value(self):
        weighting = mlh.UncertaintyWeighting(3)
        losses = torch.tensor([1.0, 2.0, 3.0])
        torch.testing.assert_close(weighting(losses), 0.5 * losses.sum())
        with torch.no_grad():
            weighting.log_vars.copy_(torch.tensor([0.0, 1.0, -1.0]))
        s = weighting.log_vars.detach()
        torch.testing.assert_close(
            weighting(losses), (0.5 * torch.exp(-s) * losses + 0.5 * s).sum()
        )

    def test_log_variances_receive_gradients_and_converge_to_log_loss(self):
        weighting = mlh.UncertaintyWeighting(2)
        losses = torch.tensor([0.5, 4.0])
        optimizer = torch.optim.SGD(weighting.parameters(), lr=0.2)
        optimizer.zero_grad()
        weighting(losses).backward()
        assert weighting.log_vars.grad is not None and (weighting.log_vars.grad != 0).all()
        for _ in range(500):
            optimizer.zero_grad()
            weighting(losses).backward()
            optimizer.step()
        torch.testing.assert_close(weighting.log_vars.detach(), losses.log(), rtol=1e-3, atol=1e-3)

    def test_gradients_flow_to_the_losses(self):
        raw = torch.tensor([1.0, 2.0], requires_grad=True)
        mlh.UncertaintyWeighting(2)(raw * 1.0).backward()
        torch.testing.assert_close(raw.grad, torch.tensor([0.5, 0.5]))

    def test_follows_dtype(self):
        out = mlh.UncertaintyWeighting(2)(torch.tensor([1.0, 2.0], dtype=torch.float64))
        assert out.dtype == torch.float64

    def test_repr_rebuilds(self):
        assert repr(mlh.UncertaintyWeighting(num_tasks=3)) == "UncertaintyWeighting(num_tasks=3)"
        assert isinstance(
            eval(repr(mlh.UncertaintyWeighting(3)), vars(mlh)), mlh.UncertaintyWeighting
        )


class TestDWA:
    def test_ones_until_two_epochs(self):
        dwa = mlh.DWA(3)
        torch.testing.assert_close(dwa.weights, torch.ones(3))
        torch.testing.assert_close(dwa.step(torch.tensor([1.0, 2.0, 3.0])), torch.ones(3))

    def test_formula(self):
        dwa = mlh.DWA(3, temperature=2.0)
        dwa.step(torch.tensor([1.0, 2.0, 4.0]))
        weights = dwa.step(torch.tensor([0.5, 2.0, 3.0]))
        r = torch.tensor([0.5, 1.0, 0.75])
        torch.testing.assert_close(weights, 3 * torch.softmax(r / 2.0, 0))
        assert weights.argmax() == 1  # the task that stopped improving gets most weight

    def test_uses_only_the_last_two_epochs(self):
        dwa = mlh.DWA(2)
        for epoch in ([9.0, 1.0], [1.0, 1.0], [0.5, 1.0]):
            weights = dwa.step(torch.tensor(epoch))
        torch.testing.assert_close(weights, 2 * torch.softmax(torch.tensor([0.5, 1.0]) / 2, 0))

    def test_high_temperature_is_equal_weights(self):
        dwa = mlh.DWA(2, temperature=1e6)
        dwa.step(torch.tensor([1.0, 1.0]))
        torch.testing.assert_close(
            dwa.step(torch.tensor([0.1, 1.0])), torch.ones(2), rtol=1e-5, atol=1e-5
        )

    def test_repr(self):
        assert repr(mlh.DWA(2, temperature=1.5)) == "DWA(num_tasks=2, temperature=1.5)"


class TestGradNorm:
    def test_weights_sum_to_t_and_balance_gradient_norms(self):
        torch.manual_seed(0)
        shared = torch.nn.Linear(4, 8)
        heads = [torch.nn.Linear(8, 1) for _ in range(2)]
        gradnorm = mlh.GradNorm(2, alpha=0.0, lr=0.05)
        x = torch.randn(32, 4)
        for _ in range(200):
            features = shared(x)
            losses = torch.stack(
                [heads[0](features).pow(2).mean(), 20 * heads[1](features).pow(2).mean()]
            )
            weights = gradnorm.update(losses, shared.parameters())
        assert weights.sum().item() == pytest.approx(2.0)
        features = shared(x)
        losses = torch.stack(
            [heads[0](features).pow(2).mean(), 20 * heads[1](features).pow(2).mean()]
        )
        norms = weights * mlh.per_loss_grads(losses, list(shared.parameters())).norm(dim=1)
        assert (norms.max() / norms.min()).item() < 1.1  # alpha = 0: equal gradient norms

    def test_does_not_touch_model_gradients(self):
        shared = torch.nn.Linear(3, 3)
        losses = torch.stack([shared(torch.randn(4, 3)).sum() ** 2 * s for s in (1.0, 2.0)])
        mlh.GradNorm(2).update(losses, shared.parameters())
        assert all(p.grad is None for p in shared.parameters())
        losses.sum().backward()  # the graph was kept for the training step

    def test_repr(self):
        assert (
            repr(mlh.GradNorm(3, alpha=1.0, lr=0.01)) == "GradNorm(num_tasks=3, alpha=1.0, lr=0.01)"
        )


class TestPCGrad:
    def test_two_dimensional_case_by_hand(self):
        g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
        # g1 . g2 = -1: g1 -> g1 + g2 / 2 = (0.5, 0.5); g2 -> g2 + g1 = (0, 1)
        torch.testing.assert_close(mlh.pcgrad(torch.stack([g1, g2])), torch.tensor([0.5, 1.5]))

    def test_no_conflict_is_the_plain_sum(self):
        grads = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.0, 1.0], [0.0, 1.0, 1.0]])
        torch.testing.assert_close(mlh.pcgrad(grads), grads.sum(0))

    def test_projected_gradients_do_not_conflict_with_the_originals(self):
        gen = torch.Generator().manual_seed(1)
        grads = torch.randn(2, 10, generator=gen)
        grads[1] = -grads[0] + 0.1 * torch.randn(10, generator=gen)  # strong conflict
        combined = mlh.pcgrad(grads, generator=gen)
        assert (grads @ combined >= -1e-5).all()

    def test_seeded_order_is_reproducible_and_property_checks(self):
        grads = torch.randn(4, 20)
        a = mlh.pcgrad(grads, generator=torch.Generator().manual_seed(3))
        b = mlh.pcgrad(grads, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(a, b)
        assert a.shape == (20,) and torch.isfinite(a).all()
        zero_row = torch.cat([torch.zeros(1, 20), grads[1:]])
        assert torch.isfinite(mlh.pcgrad(zero_row)).all()

    def test_assign_grad_round_trip(self):
        net = torch.nn.Linear(3, 2)
        flat = torch.randn(sum(p.numel() for p in net.parameters()))
        mlh.assign_grad(net.parameters(), flat)
        torch.testing.assert_close(torch.cat([p.grad.flatten() for p in net.parameters()]), flat)
        with pytest.raises(ValueError, match="has 3 entries but the parameters have 8"):
            mlh.assign_grad(net.parameters(), torch.zeros(3))


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: mlh.UncertaintyWeighting(0), ValueError, "`num_tasks` must be >= 1"),
        (lambda: mlh.UncertaintyWeighting(2)(torch.ones(3)), ValueError, r"shape \(2,\)"),
        (lambda: mlh.UncertaintyWeighting(2)([1.0, 2.0]), TypeError, "`losses` must be a tensor"),
        (lambda: mlh.DWA(2, temperature=0.0), ValueError, "`temperature` must be > 0"),
        (lambda: mlh.DWA(2).step(torch.tensor([1.0, -1.0])), ValueError, "must be positive"),
        (lambda: mlh.DWA(2).step(torch.tensor([1.0, math.nan])), ValueError, "must be finite"),
        (lambda: mlh.GradNorm(2, alpha=-1.0), ValueError, "`alpha` must be >= 0"),
        (lambda: mlh.GradNorm(2, lr=0.0), ValueError, "`lr` must be > 0"),
        (lambda: mlh.pcgrad(torch.ones(3)), TypeError, r"\(T, P\) floating-point"),
        (lambda: mlh.pcgrad(torch.ones(2, 2), generator="0"), TypeError, "`generator` must be"),
    ],
)
def test_bad_inputs(make, error, match):
    with pytest.raises(error, match=match):
        make()


def _pcgrad_reference(grads, order_seed):
    """Algorithm 1 of Yu et al. written directly on the P-dimensional vectors."""
    gen = torch.Generator().manual_seed(order_seed)
    projected = grads.clone()
    for i in range(len(grads)):
        for j in torch.randperm(len(grads), generator=gen).tolist():
            if j != i:
                dot = projected[i] @ grads[j]
                if dot < 0:
                    projected[i] = projected[i] - dot / (grads[j] @ grads[j]) * grads[j]
    return projected.sum(0)


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 8])
def test_pcgrad_matches_the_direct_algorithm(num_tasks):
    gen = torch.Generator().manual_seed(num_tasks)
    grads = torch.randn(num_tasks, 50, dtype=torch.float64, generator=gen)
    grads[1] -= 1.5 * grads[0]  # make some pairs conflict
    ours = mlh.pcgrad(grads, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, _pcgrad_reference(grads, 7))
