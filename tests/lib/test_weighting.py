"""Weighting strategies: the protocol, shared properties, exact small cases, bad inputs, repr."""

from __future__ import annotations

import importlib
import math
import pkgutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.weighting_properties import all_subclasses, check_properties, make, registered
from torch import nn

import multiloss_helpers as mlh
from multiloss_helpers import weighting
from multiloss_helpers.weighting import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
if torch.backends.mps.is_available():
    DEVICES.append("mps")


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
def test_shared_properties(cls):
    check_properties(cls)


def _import_every_weighting_module() -> None:
    """Import each module of multiloss_helpers/weighting/, imported by __init__ or not.

    Without this, a strategy module that nothing imports defines no subclass, and the
    registration check below passes on a half-added strategy when this file runs alone.
    """
    for info in pkgutil.iter_modules(weighting.__path__):
        importlib.import_module(f"{weighting.__name__}.{info.name}")


def _registration_gaps(cls: type, api: str) -> list[str]:
    """The registration steps of CONTRIBUTING.md that ``cls`` is missing."""
    name, gaps = cls.__name__, []
    if cls not in registered():
        gaps.append("STRATEGIES in multiloss_helpers/weighting/__init__.py")
    if getattr(weighting, name, None) is not cls or name not in weighting.__all__:
        gaps.append("the import and __all__ of multiloss_helpers/weighting/__init__.py")
    if getattr(mlh, name, None) is not cls or name not in mlh.__all__:
        gaps.append("the package root (multiloss_helpers/__init__.py)")
    if f"multiloss_helpers.{name}" not in api:
        gaps.append("an autoclass entry in book/api.md")
    return [f"{name}: add it to {gap}" for gap in gaps]


def test_every_strategy_is_registered():
    _import_every_weighting_module()
    api = (ROOT / "book" / "api.md").read_text()
    strategies = sorted(all_subclasses(), key=lambda cls: cls.__name__)
    assert {cls.__name__ for cls in strategies} >= {"EqualWeighting", "MGDA", "PCGrad"}
    gaps = [gap for cls in strategies for gap in _registration_gaps(cls, api)]
    assert not gaps, "half-registered weighting strategies:\n" + "\n".join(gaps)
    assert len(set(STRATEGIES)) == len(STRATEGIES)
    assert set(STRATEGIES) == set(strategies), "STRATEGIES lists a class that is not a strategy"


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
        torch.testing.assert_close(mlh.flat_grad(net), flat)
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


class TestPCGradRegressions:
    @pytest.mark.parametrize(
        ("dtype", "scale"), [(torch.float32, 1e20), (torch.float16, 1e3), (torch.bfloat16, 1e20)]
    )
    def test_huge_gradients_give_the_scaled_answer(self, dtype, scale):
        g = torch.tensor([[1.0, 0.0, 0.5], [-1.0, 1.0, 0.0], [0.3, -2.0, 1.0]])
        want = mlh.pcgrad(g.double(), generator=1) * scale
        got = mlh.pcgrad((g * scale).to(dtype), generator=1)
        assert got.dtype == dtype and torch.isfinite(got).all()
        torch.testing.assert_close(got.double(), want, rtol=1e-2, atol=0)

    def test_tiny_gradients(self):
        g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]]) * 1e-30
        torch.testing.assert_close(mlh.pcgrad(g), torch.tensor([0.5, 1.5]) * 1e-30)

    def test_no_float64_inside_for_float32(self, monkeypatch):
        seen = []
        original = torch.Tensor.to

        def spy(self, *args, **kwargs):
            seen.extend(a for a in (*args, *kwargs.values()) if a is torch.float64)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, "to", spy)
        mlh.pcgrad(torch.randn(3, 5))
        assert not seen  # MPS has no float64

    def test_default_order_does_not_use_the_global_generator(self):
        g = torch.randn(5, 8)
        g[1] = -g[0] + 0.1 * torch.randn(8)
        torch.manual_seed(1)
        a = mlh.pcgrad(g)
        torch.manual_seed(2)
        b = mlh.pcgrad(g)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(
            mlh.pcgrad(g, generator=3), mlh.pcgrad(g, generator=torch.Generator().manual_seed(3))
        )


@pytest.mark.parametrize("num_tasks", [2, 3, 5, 8])
def test_pcgrad_matches_the_direct_algorithm(num_tasks):
    gen = torch.Generator().manual_seed(num_tasks)
    grads = torch.randn(num_tasks, 50, dtype=torch.float64, generator=gen)
    grads[1] -= 1.5 * grads[0]  # make some pairs conflict
    ours = mlh.pcgrad(grads, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, _pcgrad_reference(grads, 7))


# --- the protocol ---------------------------------------------------------------------


def _shared_and_heads(num_tasks=2, dtype=torch.float32, device="cpu", conflict=False):
    gen = torch.Generator().manual_seed(4)
    trunk = torch.randn(4, 3, generator=gen, dtype=dtype).to(device).requires_grad_()
    heads = torch.randn(num_tasks, 4, generator=gen, dtype=dtype)
    if conflict:  # the same head pulled towards +10 and -10: opposite trunk gradients
        heads[1] = heads[0]
    heads = heads.to(device).requires_grad_()
    x = torch.randn(8, 3, generator=gen, dtype=dtype).to(device)

    def losses(scales=None):
        features = torch.tanh(x @ trunk.T)
        out = features @ heads.T  # (8, T)
        scales = scales if scales is not None else [1.0, -2.0, 0.5, 3.0][:num_tasks]
        return torch.stack([(out[:, i] - s).pow(2).mean() for i, s in enumerate(scales)])

    return trunk, heads, losses


class TestProtocol:
    def test_base_needs_weights(self):
        with pytest.raises(NotImplementedError, match="must define `weights`"):
            mlh.Weighting(2).weights  # noqa: B018

    def test_minimal_subclass_uses_the_default_backward(self):
        class Half(mlh.Weighting):
            @property
            def weights(self):
                return torch.full((self.num_tasks,), 0.5)

        w = torch.ones(2, requires_grad=True)
        applied = Half(2).backward(torch.stack([w[0] * 3, w[1] * 5]))
        torch.testing.assert_close(applied, torch.full((2,), 0.5))
        torch.testing.assert_close(w.grad, torch.tensor([1.5, 2.5]))

    @pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
    def test_backward_accumulates_like_tensor_backward(self, cls):
        trunk, heads, losses = _shared_and_heads()
        separate = make(cls, 2, [trunk])
        steps = []
        for _ in range(2):
            trunk.grad = heads.grad = None
            separate.backward(losses())
            steps.append((trunk.grad.clone(), heads.grad.clone()))
        trunk.grad = heads.grad = None
        accumulating = make(cls, 2, [trunk])
        accumulating.backward(losses())
        accumulating.backward(losses())
        torch.testing.assert_close(trunk.grad, steps[0][0] + steps[1][0])
        torch.testing.assert_close(heads.grad, steps[0][1] + steps[1][1])

    @pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
    def test_follows_the_losses_device(self, cls, device):
        trunk, _, losses = _shared_and_heads(device=device)
        strategy = make(cls, 2, [trunk]).to(device)
        weights = strategy.backward(losses())
        assert weights.device.type == device.type and torch.isfinite(weights.cpu()).all()
        strategy.epoch_end(losses().detach().abs() + 0.1)
        assert strategy.weights.shape == (2,)

    @pytest.mark.parametrize("cls", STRATEGIES, ids=lambda cls: cls.__name__)
    def test_repr_rebuilds(self, cls):
        strategy = make(cls, 3, [torch.ones(2, requires_grad=True)])
        text = repr(strategy)
        assert text.startswith(f"{cls.__name__}(")
        assert "num_tasks=3" in text or "multipliers=" in text
        if "shared=" not in text:
            rebuilt = eval(text, vars(mlh))
            assert repr(rebuilt) == text

    @pytest.mark.parametrize(
        ("losses", "error", "match"),
        [
            (torch.ones(2), ValueError, "has no graph"),
            (torch.ones(3, requires_grad=True), ValueError, r"shape \(2,\)"),
            ([1.0, 2.0], TypeError, "`losses` must be a tensor"),
            (torch.ones(2, dtype=torch.long), TypeError, "floating point"),
            (torch.tensor([1.0, math.nan], requires_grad=True), ValueError, "must be finite"),
        ],
    )
    def test_bad_losses(self, losses, error, match):
        with pytest.raises(error, match=match):
            mlh.EqualWeighting(2).backward(losses)


class TestFixed:
    def test_multipliers_in_the_step_weights_rescaled(self):
        w = torch.ones(2, requires_grad=True)
        fixed = mlh.FixedWeighting([1.0, 3.0])
        applied = fixed.backward(torch.stack([w[0], w[1]]))
        torch.testing.assert_close(w.grad, torch.tensor([1.0, 3.0]))  # the raw multipliers
        torch.testing.assert_close(applied, torch.tensor([0.5, 1.5]))
        assert repr(fixed) == "FixedWeighting(multipliers=[1.0, 3.0])"

    @pytest.mark.parametrize(
        ("multipliers", "error", "match"),
        [
            ([1.0, -1.0], ValueError, "non-negative"),
            ([0.0, 0.0], ValueError, "positive sum"),
            ([1.0, math.inf], ValueError, "must be finite"),
            (torch.ones(2, 2), ValueError, "must be 1-D"),
            ("ab", TypeError, "sequence of floats"),
            # each of these was accepted: "12" as [1, 2], bools as 1/0, complex cast to real
            ("12", TypeError, "sequence of floats"),
            (["1", "2"], TypeError, r"`multipliers\[0\]` must be a real number"),
            ([True, False], TypeError, r"`multipliers\[0\]` must be a real number"),
            (torch.tensor([1 + 1j, 3]), TypeError, "`multipliers` must be real"),
            (1.0, TypeError, "sequence of floats"),
        ],
    )
    def test_bad_multipliers(self, multipliers, error, match):
        with pytest.raises(error, match=match):
            mlh.FixedWeighting(multipliers)

    @pytest.mark.parametrize(
        ("multipliers", "want"),
        # the sum overflowed (weights 0) or its reciprocal did (inf, nan)
        [([3e38, 3e38], [1.0, 1.0]), ([1e-45, 0.0], [2.0, 0.0]), ([3e38, 1e38], [1.5, 0.5])],
    )
    def test_weights_of_extreme_multipliers(self, multipliers, want):
        weights = mlh.FixedWeighting(torch.tensor(multipliers)).weights
        torch.testing.assert_close(weights, torch.tensor(want))

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_half_losses_are_weighted_in_float32(self, dtype):
        # 1e5 as a float16 multiplier was inf: the returned weights were NaN
        w = torch.ones(2, dtype=dtype, requires_grad=True)
        applied = mlh.FixedWeighting([1e5, 1e5]).backward(torch.stack([w[0], w[1]]) * 1e-3)
        assert applied.dtype == dtype
        torch.testing.assert_close(applied, torch.ones(2, dtype=dtype))


@pytest.mark.parametrize("cls", [mlh.PCGrad, mlh.MGDA])
def test_surgery_refuses_a_shared_parameter_listed_twice(cls):
    # [w, w] doubled w's gradient silently: (4, 3) became (8, 6)
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"`shared\[1\]` is `shared\[0\]` again"):
        cls(2, shared=[w, w])


@pytest.mark.parametrize("cls", [mlh.PCGrad, mlh.MGDA])
def test_surgery_leaves_a_shared_parameter_frozen_later_untouched(cls):
    # it received a zero .grad, which Adam's momentum or weight decay would still step
    trunk, head = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    strategy = cls(2, shared=trunk.parameters())
    trunk.bias.requires_grad_(False)
    out = head(trunk(torch.ones(5, 3)))
    strategy.backward(torch.stack([out[:, 0].mean(), out[:, 1].pow(2).mean()]))
    assert trunk.bias.grad is None and trunk.weight.grad is not None


def test_pcgrad_seed_beyond_torchs_range():
    # torch raised "Overflow when unpacking long long", naming no argument
    with pytest.raises(ValueError, match=r"`seed` must be < 2\*\*64"):
        mlh.PCGrad(2, shared=[torch.ones(2, requires_grad=True)], seed=2**64)
    with pytest.raises(ValueError, match=r"`generator` must be < 2\*\*64"):
        mlh.pcgrad(torch.ones(2, 3), generator=2**64)


class TestSurgery:
    """PCGrad and MGDA operate on the shared parameters only."""

    def test_pcgrad_shared_gets_pcgrad_heads_get_the_plain_sum(self):
        trunk, heads, losses = _shared_and_heads(conflict=True)
        grads = mlh.per_loss_grads(losses([10.0, -10.0]), [trunk])
        plain_heads = torch.autograd.grad(losses([10.0, -10.0]).sum(), heads)[0]
        assert mlh.grad_cosine(grads)[0, 1] < 0  # the two tasks conflict
        weights = mlh.PCGrad(2, shared=[trunk]).backward(losses([10.0, -10.0]))
        torch.testing.assert_close(weights, torch.ones(2))
        torch.testing.assert_close(trunk.grad.flatten(), mlh.pcgrad(grads))
        torch.testing.assert_close(heads.grad, plain_heads)

    def test_mgda_shared_gets_mgda_heads_get_the_plain_sum(self):
        trunk, heads, losses = _shared_and_heads(3)
        grads = mlh.per_loss_grads(losses(), [trunk])
        plain_heads = torch.autograd.grad(losses().sum(), heads)[0]
        strategy = mlh.MGDA(3, shared=[trunk])
        weights = strategy.backward(losses())
        torch.testing.assert_close(weights, 3 * mlh.min_norm_weights(grads))
        torch.testing.assert_close(strategy.weights, weights)
        torch.testing.assert_close(trunk.grad.flatten(), mlh.mgda(grads))
        torch.testing.assert_close(heads.grad, plain_heads)

    def test_existing_shared_gradient_is_kept(self):
        trunk, _, losses = _shared_and_heads()
        trunk.grad = torch.ones_like(trunk)
        grads = mlh.per_loss_grads(losses(), [trunk])
        mlh.PCGrad(2, shared=[trunk]).backward(losses())
        torch.testing.assert_close(trunk.grad.flatten(), 1 + mlh.pcgrad(grads))

    def test_pcgrad_order_is_seeded_not_global(self):
        trunk, _, losses = _shared_and_heads(4)
        results = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            trunk.grad = None
            strategy = mlh.PCGrad(4, shared=[trunk], seed=5)
            for _ in range(3):
                strategy.backward(losses())
            results.append(trunk.grad.clone())
        torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)

    @pytest.mark.parametrize("cls", [mlh.PCGrad, mlh.MGDA])
    def test_shared_must_be_a_list_of_tensors(self, cls):
        with pytest.raises(TypeError, match="`shared` must be an iterable of tensors"):
            cls(2, shared=torch.ones(3, requires_grad=True))
        with pytest.raises(ValueError, match="`shared` is empty"):
            cls(2, shared=[])


# --- issue 11 regressions --------------------------------------------------------------


class TestUncertaintyProtocol:
    def test_weights_are_the_multipliers_rescaled_to_sum_to_t(self):
        weighting = mlh.UncertaintyWeighting(3)
        with torch.no_grad():
            weighting.log_vars.copy_(torch.tensor([0.0, 1.0, -1.0]))
        multipliers = 0.5 * torch.exp(-weighting.log_vars.detach())
        torch.testing.assert_close(weighting.weights, 3 * multipliers / multipliers.sum())

    def test_backward_trains_the_log_variances(self):
        weighting = mlh.UncertaintyWeighting(2)
        raw = torch.tensor([0.5, 4.0], requires_grad=True)
        weighting.backward(raw * 1.0)
        torch.testing.assert_close(raw.grad, torch.tensor([0.5, 0.5]))
        # d/ds (0.5 e^-s L + 0.5 s) at s = 0 is 0.5 (1 - L)
        torch.testing.assert_close(weighting.log_vars.grad, torch.tensor([0.25, -1.5]))


def test_uncertainty_device_mismatch_is_named():
    losses = torch.ones(2, device="meta", requires_grad=True)
    with pytest.raises(ValueError, match="are on meta but the log-variances are on cpu"):
        mlh.UncertaintyWeighting(2)(losses)


class TestDWARegressions:
    def test_keeps_a_copy_of_the_callers_tensor(self):
        dwa = mlh.DWA(2)
        epoch = torch.tensor([1.0, 1.0])
        dwa.step(epoch)
        epoch.mul_(100)  # the caller reuses its buffer
        torch.testing.assert_close(
            dwa.step(torch.tensor([0.5, 0.9])), torch.tensor([0.9003, 1.0997]), rtol=0, atol=1e-4
        )

    def test_tiny_temperature_is_the_limit_not_nan(self):
        dwa = mlh.DWA(3, temperature=1e-30)
        dwa.step(torch.tensor([1.0, 1.0, 1.0]))
        torch.testing.assert_close(
            dwa.step(torch.tensor([0.5, 0.9, 0.7])), torch.tensor([0.0, 3.0, 0.0])
        )

    def test_overflowing_ratio_is_the_limit_not_nan(self):
        dwa = mlh.DWA(2)
        dwa.step(torch.tensor([1e-30, 1.0]))
        weights = dwa.step(torch.tensor([1e30, 1.0]))  # ratio 1e60 overflows float32
        torch.testing.assert_close(weights, torch.tensor([2.0, 0.0]))

    def test_matches_the_softmax_formula_in_ordinary_cases(self):
        dwa = mlh.DWA(4, temperature=0.3)
        first, second = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0.9, 1.0, 2.5, 4.4])
        dwa.step(first)
        torch.testing.assert_close(dwa.step(second), 4 * torch.softmax(second / first / 0.3, 0))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_first_epochs_follow_device_and_dtype(self, device, dtype):
        if device.type == "mps" and dtype == torch.float64:
            pytest.skip("MPS has no float64")
        dwa = mlh.DWA(2)
        weights = dwa.step(torch.tensor([1.0, 2.0], dtype=dtype, device=device))
        assert weights.device.type == device.type and weights.dtype == dtype
        weights = dwa.step(torch.tensor([0.5, 2.0], dtype=dtype, device=device))
        assert weights.device.type == device.type and weights.dtype == dtype

    def test_epoch_end_is_step(self):
        a, b = mlh.DWA(2), mlh.DWA(2)
        for epoch in ([1.0, 2.0], [0.5, 1.9]):
            a.epoch_end(torch.tensor(epoch))
            b.step(torch.tensor(epoch))
        torch.testing.assert_close(a.weights, b.weights)

    def test_backward_applies_the_current_weights(self):
        dwa = mlh.DWA(2)
        dwa.epoch_end(torch.tensor([1.0, 1.0]))
        dwa.epoch_end(torch.tensor([0.5, 0.9]))
        w = torch.ones(2, requires_grad=True)
        applied = dwa.backward(w * 1.0)
        torch.testing.assert_close(applied, dwa.weights)
        torch.testing.assert_close(w.grad, dwa.weights)


class TestGradNormRegressions:
    def _losses(self, dtype=torch.float32, scales=(1.0, 10.0), device="cpu"):
        gen = torch.Generator().manual_seed(0)
        shared = torch.randn(4, 3, generator=gen, dtype=dtype).to(device).requires_grad_()
        x = torch.randn(8, 3, generator=gen, dtype=dtype).to(device)
        features = torch.tanh(x @ shared.T)
        losses = torch.stack([s * features[:, i].pow(2).mean() for i, s in enumerate(scales)])
        return shared, losses

    def test_follows_the_losses_dtype(self):
        shared, losses = self._losses(torch.float64)
        weights = mlh.GradNorm(2).update(losses, [shared])
        assert weights.dtype == torch.float64

    @pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
    def test_low_precision_keeps_a_float32_state(self, dtype):
        shared, losses = self._losses(dtype)
        gradnorm = mlh.GradNorm(2)
        weights = gradnorm.update(losses, [shared])
        assert weights.dtype == dtype and gradnorm.loss_weights.dtype == torch.float32
        assert torch.isfinite(gradnorm.exp_avg_sq).all()

    def test_refuses_a_single_tensor_for_the_parameters(self):
        shared, losses = self._losses()
        with pytest.raises(TypeError, match="`shared_params` must be an iterable of tensors"):
            mlh.GradNorm(2).update(losses, shared)

    def test_refuses_zero_initial_loss(self):
        shared, losses = self._losses(scales=(0.0, 1.0))
        with pytest.raises(ValueError, match=r"L_i\(0\).*must be positive"):
            mlh.GradNorm(2).update(losses, [shared])

    def test_refuses_negative_losses(self):
        gradnorm = mlh.GradNorm(2)
        shared, losses = self._losses()
        gradnorm.update(losses, [shared])
        shared, losses = self._losses(scales=(-1.0, 1.0))
        with pytest.raises(ValueError, match="must be non-negative"):
            gradnorm.update(losses, [shared])

    def test_keeps_its_optimizer_state_across_calls(self):
        gradnorm = mlh.GradNorm(2)
        for _ in range(3):
            shared, losses = self._losses()
            gradnorm.update(losses, [shared])
        assert gradnorm.steps == 3 and (gradnorm.exp_avg_sq > 0).all()
        state = gradnorm.state_dict()
        assert {"loss_weights", "exp_avg", "exp_avg_sq"} <= set(state)

    def test_matches_torch_adam_on_the_same_gradient(self):
        # the built-in Adam step equals torch.optim.Adam on the weights (before renormalising)
        gradnorm = mlh.GradNorm(2, alpha=0.0, lr=0.01)
        shared, losses = self._losses()
        reference = torch.ones(2, requires_grad=True)
        optimizer = torch.optim.Adam([reference], lr=0.01)
        norms = mlh.per_loss_grads(losses, [shared], retain_graph=True).norm(dim=1)
        gap = norms - norms.mean()
        reference.grad = torch.sign(gap) * norms
        optimizer.step()
        weights = gradnorm.update(losses, [shared])
        torch.testing.assert_close(weights, 2 * reference.detach() / reference.detach().sum())

    def test_weights_follow_the_device(self, device):
        shared, losses = self._losses(device=device)
        weights = mlh.GradNorm(2).update(losses, [shared])  # created on the CPU
        assert weights.device.type == device.type
        shared, losses = self._losses(device=device)
        weighting = mlh.GradNorm(2, shared=[shared])
        assert weighting.backward(losses).device.type == device.type

    def test_backward_without_shared_is_refused(self):
        _, losses = self._losses()
        with pytest.raises(ValueError, match=r"GradNorm\.backward needs the shared parameters"):
            mlh.GradNorm(2).backward(losses)


INF = float("inf")


# Issue 20 regression: UncertaintyWeighting computed in the losses' low-precision dtype (D1)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_uncertainty_weighting_computes_low_precision_losses_in_float32(dtype):
    weighting = mlh.UncertaintyWeighting(3)
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.3, -1.2, 2.0]))
    losses = torch.tensor([0.9967, 3.25, 0.0123], dtype=dtype, requires_grad=True)
    total = weighting(losses)
    assert total.dtype == dtype  # the input's dtype out
    total.backward()
    # the reference: float64 on the same (already rounded) loss values
    s = weighting.log_vars.detach().double()
    values = losses.detach().double()
    expected_grad = 0.5 - 0.5 * torch.exp(-s) * values
    torch.testing.assert_close(
        weighting.log_vars.grad.double(), expected_grad, rtol=1e-6, atol=1e-7
    )
    expected_total = (0.5 * torch.exp(-s) * values + 0.5 * s).sum()
    torch.testing.assert_close(total.double(), expected_total.to(dtype).double())


# Issue 20 regression: UncertaintyWeighting computed in the losses' low-precision dtype (D1)
def test_uncertainty_weighting_bfloat16_gradient_is_not_rounded_to_zero():
    weighting = mlh.UncertaintyWeighting(1)
    with torch.no_grad():
        weighting.log_vars.fill_(-0.0032678)  # exp(-s) * L is just above 1
    loss = torch.tensor([0.99609375], dtype=torch.bfloat16, requires_grad=True)
    weighting(loss).backward()
    s = weighting.log_vars.item()  # the float32 value of the parameter
    exact = 0.5 - 0.5 * math.exp(-s) * 0.99609375  # 3.23e-4
    # float32 inside: a few float32 roundings of 0.5 (3e-8 each); bfloat16 was off by 8e-4
    assert weighting.log_vars.grad.item() == pytest.approx(exact, abs=1e-7)
    assert weighting.log_vars.grad.item() != 0.0


# Issue 20 regression: MGDA/PCGrad gave an unreached shared parameter a zero grad (D5)
@pytest.mark.parametrize("strategy", ["MGDA", "PCGrad"])
def test_surgery_leaves_no_zero_grad_on_a_shared_parameter_no_loss_reaches(strategy):
    trunk, unused = nn.Linear(3, 3), nn.Linear(3, 3)
    heads = nn.Linear(3, 2)
    shared = [*trunk.parameters(), *unused.parameters()]
    weighting = getattr(mlh, strategy)(2, shared=shared)
    out = heads(trunk(torch.randn(8, 3)))
    weighting.backward(torch.stack([out[:, 0].pow(2).mean(), out[:, 1].abs().mean()]))
    assert unused.weight.grad is None and unused.bias.grad is None
    assert trunk.weight.grad is not None
    # so AdamW's decoupled decay leaves the parameter alone, as after plain backward()
    before = unused.weight.detach().clone()
    torch.optim.AdamW(shared, lr=0.1, weight_decay=0.5).step()
    assert torch.equal(unused.weight, before)


# Issue 20 regression: pcgrad on gradients with a graph, and non-finite gradients (D)
def test_pcgrad_on_gradients_with_a_graph_is_differentiable():
    grads = torch.tensor([[1.0, 0.5, -2.0], [-1.0, 1.0, 0.3]], dtype=torch.float64)
    grads.requires_grad_(True)
    assert torch.autograd.gradcheck(mlh.pcgrad, (grads,))


# Issue 20 regression: pcgrad on gradients with a graph, and non-finite gradients (D)
def test_pcgrad_on_gradients_built_from_parameters_backpropagates():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    out = mlh.pcgrad(torch.stack([w * 2, -w + torch.tensor([0.0, 5.0])]))
    (g,) = torch.autograd.grad(out.sum(), w)
    assert torch.isfinite(g).all()


# Issue 20 regression: pcgrad on gradients with a graph, and non-finite gradients (D)
@pytest.mark.parametrize("bad", [float("nan"), INF])
def test_pcgrad_refuses_non_finite_gradients_as_mgda_does(bad):
    grads = torch.tensor([[1.0, 0.0], [bad, 1.0]])
    with pytest.raises(ValueError, match="`grads` must be finite") as mgda_error:
        mlh.mgda(grads)
    with pytest.raises(ValueError) as pcgrad_error:
        mlh.pcgrad(grads)
    assert str(pcgrad_error.value) == str(mgda_error.value)


# Issue 20 regression: pcgrad/PCGrad refused a NumPy seed (D)
def test_pcgrad_takes_a_numpy_seed():
    grads = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -1.0, 1.0]])
    torch.testing.assert_close(
        mlh.pcgrad(grads, generator=np.int64(3)), mlh.pcgrad(grads, generator=3)
    )
    assert torch.equal(
        mlh.PCGrad(
            3, shared=[torch.zeros(1, requires_grad=True)], seed=np.uint64(3)
        ).generator.get_state(),
        torch.Generator().manual_seed(3).get_state(),
    )
