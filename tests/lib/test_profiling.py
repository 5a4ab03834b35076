"""compare_times and saved_tensor_bytes."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh


def test_compare_times_runs_each_candidate_interleaved():
    calls = []
    times = mlh.compare_times(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=2
    )
    assert list(times) == ["a", "b"]
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert all(t >= 0 for t in times.values())


@pytest.mark.parametrize(
    ("candidates", "kwargs", "error", "match"),
    [
        ({}, {}, TypeError, "non-empty mapping"),
        ({"a": 1}, {}, TypeError, r"`candidates\['a'\]` must be callable"),
        ({"a": print}, {"repeats": 0}, ValueError, "`repeats` must be >= 1"),
        ({"a": print}, {"warmup": -1}, ValueError, "`warmup` must be >= 0"),
    ],
)
def test_compare_times_bad_inputs(candidates, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.compare_times(candidates, **kwargs)


def test_saved_bytes_counts_what_backward_needs():
    w = torch.randn(100, 100, requires_grad=True)
    x = torch.randn(10, 100)
    result, n = mlh.saved_tensor_bytes(lambda: (x @ w).relu().sum())
    assert n == 2 * 10 * 100 * 4  # x for w's gradient, relu's output for its own
    result.backward()
    assert w.grad is not None


def test_saved_bytes_counts_a_storage_once():
    w = torch.randn(50, requires_grad=True)
    _, once = mlh.saved_tensor_bytes(lambda: (w * w).sum())
    assert once == 50 * 4


def test_saved_bytes_grow_with_depth_and_not_with_heads():
    def graph(depth, heads):
        net = mlh.MultiHeadNet(8, {f"h{i}": 1 for i in range(heads)}, hidden=(64,) * depth, seed=0)
        x = torch.randn(32, 8)
        return mlh.saved_tensor_bytes(lambda: sum(o.sum() for o in net(x).values()))[1]

    assert graph(4, 1) > graph(2, 1)
    assert graph(2, 8) - graph(2, 1) < 0.5 * graph(2, 1)


def test_saved_bytes_needs_a_callable():
    with pytest.raises(TypeError, match="`fn` must be callable"):
        mlh.saved_tensor_bytes(3)
