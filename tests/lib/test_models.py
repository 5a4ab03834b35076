"""The shared-trunk multi-head network."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh


def test_output_per_head():
    net = mlh.MultiHeadNet(6, {"a": 4, "b": 1}, hidden=(8, 8))
    out = net(torch.randn(5, 6))
    assert set(out) == {"a", "b"}
    assert out["a"].shape == (5, 4) and out["b"].shape == (5, 1)


def test_seed_fixes_weights_without_touching_global_rng():
    state = torch.get_rng_state()
    a = mlh.MultiHeadNet(3, {"h": 2}, seed=11)
    assert torch.equal(state, torch.get_rng_state())
    b = mlh.MultiHeadNet(3, {"h": 2}, seed=11)
    c = mlh.MultiHeadNet(3, {"h": 2}, seed=12)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_shared_and_head_parameters_partition_the_model():
    net = mlh.MultiHeadNet(3, {"a": 2, "b": 1}, hidden=(4, 4))
    groups = [net.shared_parameters(), net.head_parameters("a"), net.head_parameters("b")]
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in net.parameters()}


def test_a_head_loss_reaches_only_its_head_and_the_trunk():
    net = mlh.MultiHeadNet(3, {"a": 2, "b": 1}, hidden=(4,))
    net(torch.randn(5, 3))["a"].sum().backward()
    assert all(p.grad is None for p in net.head_parameters("b"))
    assert all(p.grad is not None for p in net.shared_parameters())


def test_features_is_trunk_output():
    net = mlh.MultiHeadNet(3, {"a": 2}, hidden=(4, 7))
    x = torch.randn(2, 3)
    assert net.features(x).shape == (2, 7)
    torch.testing.assert_close(net(x)["a"], net.heads["a"](net.features(x)))


def test_dropout_only_in_training_mode():
    net = mlh.MultiHeadNet(3, {"a": 2}, hidden=(64,), dropout=0.5, seed=0)
    x = torch.randn(8, 3)
    net.eval()
    torch.testing.assert_close(net(x)["a"], net(x)["a"])
    net.train()
    assert not torch.equal(net(x)["a"], net(x)["a"])


def test_repr_shows_arguments():
    text = repr(mlh.MultiHeadNet(3, {"a": 2}, hidden=(4,), seed=1))
    assert "3, {'a': 2}, hidden=(4,), activation='relu', dropout=0.0, seed=1" in text


def test_default_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert mlh.default_device().type == expected


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, {"a": 1}), {}, ValueError, "`in_features` must be >= 1"),
        ((3, {}), {}, TypeError, "`heads` must be a non-empty mapping"),
        ((3, {"a.b": 1}), {}, ValueError, "without '.'"),
        ((3, {"a": 0}), {}, ValueError, r"`heads\['a'\]` must be >= 1"),
        ((3, {"a": 1}), {"hidden": ()}, TypeError, "`hidden` must be a non-empty sequence"),
        ((3, {"a": 1}), {"hidden": (4, 0)}, ValueError, r"`hidden\[1\]` must be >= 1"),
        ((3, {"a": 1}), {"activation": "sigmoid"}, ValueError, "`activation` must be one of"),
        ((3, {"a": 1}), {"dropout": 1.0}, ValueError, "`dropout` must be < 1"),
        ((3, {"a": 1}), {"seed": -2}, ValueError, "`seed` must be >= 0"),
    ],
)
def test_bad_constructor_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.MultiHeadNet(*args, **kwargs)


def test_wrong_input_shape_is_named():
    net = mlh.MultiHeadNet(3, {"a": 1})
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 3\), got \(2, 4\)"):
        net(torch.randn(2, 4))
    with pytest.raises(TypeError, match=r"`x` must be a torch\.Tensor"):
        net([[1.0, 2.0, 3.0]])


def test_unknown_head_name():
    with pytest.raises(ValueError, match=r"`name` must be one of \('a',\)"):
        mlh.MultiHeadNet(3, {"a": 1}).head_parameters("b")
