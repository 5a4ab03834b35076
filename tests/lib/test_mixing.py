"""mlh.TaskMixer: the three strategies' frequencies, restarts, epochs, seeds, bad input."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

import multiloss_helpers as mlh

LOADERS = {"a": list(range(30)), "b": list(range(100, 110)), "c": list(range(200, 260))}


def _within_binomial(count: int, steps: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(count - steps * p) <= sigmas * math.sqrt(steps * p * (1 - p))


@pytest.mark.parametrize(
    ("strategy", "temperature", "expected"),
    [
        ("proportional", 2.0, {"a": 0.3, "b": 0.1, "c": 0.6}),
        ("temperature", 1.0, {"a": 0.3, "b": 0.1, "c": 0.6}),
        ("temperature", 2.0, None),
        ("temperature", 5.0, None),
        ("temperature", 1e6, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}),
    ],
)
def test_sampling_frequencies_are_within_binomial_tolerance(strategy, temperature, expected):
    if expected is None:  # n_i^(1/T), normalised
        powered = {name: len(loader) ** (1 / temperature) for name, loader in LOADERS.items()}
        expected = {name: value / sum(powered.values()) for name, value in powered.items()}
    steps = 20_000
    mixer = mlh.TaskMixer(
        LOADERS, strategy=strategy, temperature=temperature, steps_per_epoch=steps, seed=0
    )
    for name, p in mixer.probabilities.items():
        assert p == pytest.approx(expected[name], rel=1e-5)
    counts = Counter(name for name, _ in mixer)
    assert sum(counts.values()) == steps
    for name, p in expected.items():
        assert _within_binomial(counts[name], steps, p), (name, counts[name], steps * p)


def test_temperature_lifts_the_small_task():
    shares = [
        mlh.TaskMixer(LOADERS, strategy="temperature", temperature=t).probabilities["b"]
        for t in (1.0, 2.0, 5.0, 100.0)
    ]
    assert shares == sorted(shares) and shares[0] == pytest.approx(0.1) and shares[-1] < 1 / 3


def test_round_robin_takes_turns_and_restarts_an_exhausted_loader():
    loaders = {"x": ["x0", "x1", "x2"], "y": ["y0"]}
    mixer = mlh.TaskMixer(loaders)
    assert len(mixer) == 4
    first = list(mixer)
    assert first == [("x", "x0"), ("y", "y0"), ("x", "x1"), ("y", "y0")]
    # the next epoch carries on: x's position and the turn carry over
    assert list(mixer) == [("x", "x2"), ("y", "y0"), ("x", "x0"), ("y", "y0")]


def test_a_batch_loader_is_used_up_before_it_restarts_and_reshuffles():
    data = {"x": torch.arange(12.0)}
    loaders = {
        "one": mlh.BatchLoader(data, batch_size=4, seed=1),
        "two": mlh.BatchLoader({"x": torch.arange(100.0, 104.0)}, batch_size=4, seed=2),
    }
    mixer = mlh.TaskMixer(loaders, strategy="proportional", steps_per_epoch=60, seed=0)
    seen = [batch["x"] for name, batch in mixer if name == "one"]
    for start in range(0, len(seen) - 2, 3):  # every 3 batches: one epoch of "one"
        epoch = torch.cat(seen[start : start + 3])
        assert torch.equal(epoch.sort().values, data["x"])
    orders = {tuple(torch.cat(seen[s : s + 3]).tolist()) for s in range(0, len(seen) - 2, 3)}
    assert len(orders) > 1  # restarted with a new permutation


def test_a_seed_repeats_the_sequence_and_epochs_continue_the_generator():
    def names(mixer):
        return [name for name, _ in mixer]

    one = mlh.TaskMixer(LOADERS, strategy="temperature", seed=7)
    two = mlh.TaskMixer(LOADERS, strategy="temperature", seed=7)
    first, second = names(one), names(one)
    assert first == names(two) and second == names(two)
    assert first != second
    assert names(mlh.TaskMixer(LOADERS, strategy="temperature", seed=8)) != first
    gen = torch.Generator().manual_seed(7)
    assert names(mlh.TaskMixer(LOADERS, strategy="temperature", seed=gen)) == first


def test_epoch_length_and_sizes():
    mixer = mlh.TaskMixer(LOADERS, strategy="proportional")
    assert len(mixer) == 100 == len(list(mixer))
    by_samples = mlh.TaskMixer(
        LOADERS, strategy="proportional", sizes={"a": 1.0, "b": 1.0, "c": 2.0}
    )
    assert by_samples.probabilities == {"a": 0.25, "b": 0.25, "c": 0.5}
    assert "TaskMixer(<a: 30.0, b: 10.0, c: 60.0>" in repr(mixer)


def test_loaders_without_len_need_steps_per_epoch_and_sizes():
    def endless(tag):
        return (f"{tag}{i}" for i in range(10**9))

    with pytest.raises(TypeError, match="has no len"):
        mlh.TaskMixer({"a": endless("a"), "b": endless("b")})
    mixer = mlh.TaskMixer({"a": endless("a"), "b": endless("b")}, steps_per_epoch=4)
    assert [batch for _, batch in mixer] == ["a0", "b0", "a1", "b1"]
    with pytest.raises(TypeError, match="has no len"):
        mlh.TaskMixer({"a": endless("a")}, strategy="proportional", steps_per_epoch=4)
    sized = mlh.TaskMixer(
        {"a": endless("a")}, strategy="proportional", steps_per_epoch=3, sizes={"a": 5}
    )
    assert [batch for _, batch in sized] == ["a0", "a1", "a2"]


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ([[1, 2]], {}, TypeError, "`loaders` must be a non-empty mapping"),
        ([{}], {}, TypeError, "`loaders` must be a non-empty mapping"),
        ([{1: [1]}], {}, TypeError, "keys must be task names"),
        ([{"a": 3}], {}, TypeError, r"`loaders\['a'\]` must be iterable"),
        ([LOADERS], {"strategy": "uniform"}, ValueError, "`strategy` must be one of"),
        ([LOADERS], {"temperature": 0.0}, ValueError, "`temperature` must be > 0"),
        ([LOADERS], {"temperature": "2"}, TypeError, "`temperature` must be a real number"),
        ([LOADERS], {"steps_per_epoch": 0}, ValueError, "`steps_per_epoch` must be >= 1"),
        ([LOADERS], {"steps_per_epoch": 2.5}, TypeError, "`steps_per_epoch` must be an int"),
        ([LOADERS], {"seed": -1}, ValueError, "`seed` must be >= 0"),
        ([LOADERS], {"sizes": {"a": 1.0}}, ValueError, "`sizes` must have the task names"),
        ([LOADERS], {"sizes": {"a": 1, "b": 0, "c": 1}}, ValueError, r"`sizes\['b'\]` must be > 0"),
        ([LOADERS], {"sizes": [1, 2, 3]}, TypeError, "`sizes` must be a mapping"),
        ([{"a": [], "b": []}], {}, ValueError, "every loader in `loaders` is empty"),
    ],
)
def test_bad_input_is_refused_by_name(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.TaskMixer(*args, **kwargs)


def test_an_empty_loader_among_others_is_refused_when_its_turn_comes():
    mixer = mlh.TaskMixer({"a": [1, 2], "b": []})
    with pytest.raises(ValueError, match=r"`loaders\['b'\]` yields no batch"):
        list(mixer)


def test_fit_takes_a_mixer_whose_batches_are_task_name_and_batch():
    data = mlh.make_multitask_data(48, n_features=4, seed=0)
    net = mlh.MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(8,), seed=0)
    loaders = {
        "cls": mlh.BatchLoader(data, 8, seed=0),
        "reg": mlh.BatchLoader(data, 16, seed=1),
    }
    mixer = mlh.TaskMixer(loaders, strategy="proportional", seed=0)
    seen = Counter()

    def loss_fn(model, item):
        task, batch = item
        seen[task] += 1
        out = model(batch["x"])[task]
        if task == "cls":
            return torch.nn.functional.cross_entropy(out, batch["y_cls"])
        return torch.nn.functional.mse_loss(out, batch["y_reg"])

    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    history = mlh.fit(net, loss_fn, mixer, optimizer, epochs=2, progress=False)
    assert len(history.steps("total")) == 2 * len(mixer) == 2 * (6 + 3)
    assert seen["cls"] > seen["reg"] > 0
