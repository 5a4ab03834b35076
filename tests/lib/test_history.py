"""LossHistory: logging, reading, the long DataFrame."""

from __future__ import annotations

import math

import pytest
import torch

import multiloss_helpers as mlh


def _history():
    h = mlh.LossHistory()
    for epoch in range(3):
        for step in range(2):
            h.log_step({"total": torch.tensor(3.0 - epoch), "a": 1.0 + step}, epoch=epoch)
        h.log_epoch({"total": 3.0 - epoch, "a": 1.5}, epoch=epoch)
        h.log_epoch({"total": [2.0, 1.0, 1.5][epoch], "a": 1.0}, epoch=epoch, split="val")
    return h


def test_steps_and_epochs():
    h = _history()
    assert h.num_steps == 6 and len(h) == 6 and h.num_epochs == 3
    assert h.components == ["total", "a"]
    assert h.steps("total") == [3.0, 3.0, 2.0, 2.0, 1.0, 1.0]
    assert h.steps("a") == [1.0, 2.0] * 3
    assert h.epochs("total", split="val") == [2.0, 1.0, 1.5]
    assert h.last("total") == 1.0
    assert h.best_epoch("total") == 1


def test_tensors_are_kept_until_read():
    h = mlh.LossHistory()
    value = torch.tensor(2.5, requires_grad=True) * 1.0
    h.log_step({"total": value}, epoch=0)
    stored = h._step_values[0]["total"]
    assert isinstance(stored, torch.Tensor) and not stored.requires_grad
    assert h.steps() == [2.5]
    assert isinstance(h._step_values[0]["total"], float)


def test_missing_component_reads_as_nan():
    h = mlh.LossHistory()
    h.log_step({"total": 1.0}, epoch=0)
    h.log_step({"total": 1.0, "extra": 2.0}, epoch=0)
    values = h.steps("extra")
    assert math.isnan(values[0]) and values[1] == 2.0


def test_to_frame_is_long_and_complete():
    frame = _history().to_frame()
    assert list(frame.columns) == ["level", "split", "epoch", "step", "component", "value"]
    # 6 steps x 2 components + 3 epochs x 2 splits x 2 components
    assert len(frame) == 12 + 12
    epoch_rows = frame[(frame.level == "epoch") & (frame.split == "train")]
    assert epoch_rows.step.tolist() == [2, 2, 4, 4, 6, 6]
    val = frame[(frame.split == "val") & (frame.component == "total")]
    assert val.value.tolist() == [2.0, 1.0, 1.5]


def test_repr():
    assert repr(_history()) == "LossHistory(steps=6, epochs=3, components=['total', 'a'])"


@pytest.mark.parametrize(
    ("components", "error", "match"),
    [
        ({"total": torch.ones(3)}, ValueError, "must be a scalar"),
        ({"total": "1.0"}, TypeError, "must be a scalar tensor or a number"),
        ({"total": True}, TypeError, "must be a scalar tensor or a number"),
        ({}, TypeError, "non-empty mapping"),
        ({"": 1.0}, TypeError, "non-empty strings"),
    ],
)
def test_bad_components(components, error, match):
    with pytest.raises(error, match=match):
        mlh.LossHistory().log_step(components, epoch=0)


def test_bad_reads():
    h = _history()
    with pytest.raises(ValueError, match="`component` must be one of the logged components"):
        h.steps("b")
    with pytest.raises(ValueError, match="`split` must be one of"):
        h.epochs("total", split="test")
    with pytest.raises(ValueError, match="`split` must be one of"):
        h.log_epoch({"a": 1.0}, epoch=0, split="test")
    with pytest.raises(ValueError, match="`epoch` must be >= 0"):
        h.log_step({"a": 1.0}, epoch=-1)
    empty = mlh.LossHistory()
    empty.log_step({"total": 1.0}, epoch=0)
    with pytest.raises(ValueError, match="no epoch has been logged for split 'val'"):
        empty.last("total", split="val")


def test_logged_tensors_are_values_not_views():
    history = mlh.LossHistory()
    acc = torch.zeros(())
    for _ in range(3):
        acc += 1
        history.log_step({"r": acc}, epoch=0)
    assert history.steps("r") == [1.0, 2.0, 3.0]
    view = torch.zeros(2)
    history.log_epoch({"r": view[0]}, epoch=0)
    view.fill_(5.0)
    assert history.epochs("r") == [0.0]


def test_logging_a_parameter_records_its_value_at_that_step():
    weight = torch.nn.Parameter(torch.tensor(1.0))
    optimizer = torch.optim.SGD([weight], lr=0.5)
    history = mlh.LossHistory()
    for _ in range(3):
        history.log_step({"w": weight}, epoch=0)
        weight.backward(torch.tensor(1.0))
        optimizer.step()
        optimizer.zero_grad()
    assert history.steps("w") == [1.0, 0.5, 0.0]


def test_next_epoch_counts_partial_epochs():
    history = mlh.LossHistory()
    assert history.next_epoch == 0
    history.log_epoch({"total": 1.0}, epoch=0)
    assert history.next_epoch == 1
    history.log_step({"total": 1.0}, epoch=1)
    assert history.num_epochs == 1 and history.next_epoch == 2


def test_weights_gathers_weight_components():
    history = mlh.LossHistory()
    history.log_step({"total": 1.0, "weight/a": 0.5, "weight/b": 1.5}, epoch=0)
    history.log_epoch({"total": 1.0, "weight/a": 0.5, "weight/b": 1.5}, epoch=0)
    assert history.weight_names == ["a", "b"]
    assert history.weights() == {"a": [0.5], "b": [1.5]}
    assert history.weights(level="step") == {"a": [0.5], "b": [1.5]}
    with pytest.raises(ValueError, match="`level` must be one of"):
        history.weights(level="batch")
    assert mlh.LossHistory().weights() == {}


# Issue 20 regression: LossHistory rounded integer tensors through float32 (D9)
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_loss_history_keeps_integer_tensors_exact(dtype):
    history = mlh.LossHistory()
    history.log_step({"count": torch.tensor(16777217, dtype=dtype), "x": 1.5}, epoch=0)
    history.log_step({"count": torch.tensor(3), "x": torch.tensor(0.25)}, epoch=0)
    assert history.steps("count") == [16777217.0, 3.0]
    assert history.steps("x") == [1.5, 0.25]
