"""ramp and SmoothedGate."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

import multiloss_helpers as mlh


@pytest.mark.parametrize("kind", ["linear", "cosine", "step"])
def test_ramp_endpoints_and_monotone(kind):
    values = [mlh.ramp(t, start=5, length=10, kind=kind, low=0.2, high=2.0) for t in range(30)]
    assert values[:6] == [0.2] * 6
    assert values[15:] == [2.0] * 15
    assert all(b >= a for a, b in itertools.pairwise(values))


def test_ramp_shapes():
    assert mlh.ramp(5, length=10) == 0.5
    assert mlh.ramp(5, length=10, kind="cosine") == pytest.approx(0.5)
    assert mlh.ramp(2, length=10, kind="cosine") == pytest.approx(
        0.5 * (1 - math.cos(math.pi * 0.2))
    )
    assert (
        mlh.ramp(9, length=10, kind="step") == 0.0 and mlh.ramp(10, length=10, kind="step") == 1.0
    )


def test_ramp_decay_by_swapping_ends():
    assert mlh.ramp(0, length=4, low=1.0, high=0.0) == 1.0
    assert mlh.ramp(4, length=4, low=1.0, high=0.0) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"step": -1}, ValueError, "`step` must be >= 0"),
        ({"length": 0}, ValueError, "`length` must be >= 1"),
        ({"kind": "exp"}, ValueError, "`kind` must be one of"),
        ({"high": float("nan")}, ValueError, "`high` must be finite"),
        ({"step": 1.5}, TypeError, "`step` must be an int"),
    ],
)
def test_ramp_bad_inputs(kwargs, error, match):
    args = {"step": 0, "length": 5, **kwargs}
    with pytest.raises(error, match=match):
        mlh.ramp(**args)


def test_gate_without_smoothing_flickers_and_with_smoothing_does_not():
    g = torch.Generator().manual_seed(0)
    # a loss falling from 2 to 0.5 with batch noise around a threshold of 1
    losses = torch.linspace(2.0, 0.5, 200) + 0.3 * torch.randn(200, generator=g)
    raw = mlh.SmoothedGate(1.0, decay=0.0, latch=False)
    smooth = mlh.SmoothedGate(1.0, decay=0.95, latch=False)
    raw_gates = torch.stack([raw.update(v) for v in losses])
    smooth_gates = torch.stack([smooth.update(v) for v in losses])
    switches = lambda gates: int((gates[1:] != gates[:-1]).sum())  # noqa: E731
    assert switches(raw_gates) > 10
    assert switches(smooth_gates) <= 2


def test_gate_latches_and_matches_the_ema():
    gate = mlh.SmoothedGate(1.0, decay=0.5)
    values = [3.0, 0.5, 0.5, 0.5, 2.0, 5.0]
    gates = [float(gate.update(torch.tensor(v))) for v in values]
    assert gates == [0, 0, 0, 1, 1, 1]
    ema = values[0]
    for v in values[1:]:
        ema = 0.5 * ema + 0.5 * v
    assert float(gate.average) == pytest.approx(ema)
    assert gate.is_open
    gate.reset()
    assert not gate.is_open and gate.average is None


def test_gate_returns_a_tensor_on_the_loss_device_without_grad():
    gate = mlh.SmoothedGate(1.0)
    loss = torch.tensor(0.1, requires_grad=True) * 2
    out = gate.update(loss)
    assert isinstance(out, torch.Tensor) and out.device == loss.device and not out.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"threshold": "1"}, TypeError, "`threshold` must be a real number"),
        ({"threshold": 1.0, "decay": 1.0}, ValueError, "`decay` must be < 1"),
        ({"threshold": 1.0, "latch": 1}, TypeError, "`latch` must be a bool"),
    ],
)
def test_gate_bad_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.SmoothedGate(**kwargs)


def test_gate_update_needs_a_scalar_tensor():
    with pytest.raises(TypeError, match="`loss` must be a scalar tensor"):
        mlh.SmoothedGate(1.0).update(0.5)
    with pytest.raises(ValueError, match=r"`loss` must be a scalar tensor \(one element\)"):
        mlh.SmoothedGate(1.0).update(torch.ones(2))


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_gate_refuses_a_non_finite_loss_on_the_cpu_and_still_opens(bad):
    gate = mlh.SmoothedGate(1.0, decay=0.5)
    gate.update(torch.tensor(3.0))
    with pytest.raises(ValueError, match="`loss` must be finite"):
        gate.update(torch.tensor(bad))
    values = [float(gate.update(torch.tensor(0.1))) for _ in range(4)]
    assert values == [0.0, 1.0, 1.0, 1.0]  # 3 -> 1.55 -> 0.825: the gate opens


def test_gate_ignores_a_non_finite_loss_off_the_cpu(device):
    if device.type == "cpu":
        pytest.skip("the CPU refuses a non-finite loss (tested above)")
    gate = mlh.SmoothedGate(1.0, decay=0.5)
    gate.update(torch.tensor(math.nan, device=device))  # ignored: no average yet
    gate.update(torch.tensor(3.0, device=device))
    gate.update(torch.tensor(math.inf, device=device))  # ignored
    values = [float(gate.update(torch.tensor(0.1, device=device))) for _ in range(2)]
    assert values == [0.0, 1.0]


def test_gate_repr_rebuilds():
    gate = mlh.SmoothedGate(0.3, decay=0.8, latch=False)
    rebuilt = eval(repr(gate), {"SmoothedGate": mlh.SmoothedGate})
    assert repr(rebuilt) == repr(gate)


def test_gate_repr():
    assert (
        repr(mlh.SmoothedGate(0.3, decay=0.8, latch=False))
        == "SmoothedGate(threshold=0.3, decay=0.8, latch=False)"
    )
