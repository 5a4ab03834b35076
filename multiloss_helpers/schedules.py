r"""Loss-weight schedules: ramps over training steps, and a gate on a smoothed loss."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_real_floating,
    check_scalar,
)

__all__ = ["SmoothedGate", "ramp"]

_KINDS = ("linear", "cosine", "step")


def ramp(
    step: int,
    *,
    start: int = 0,
    length: int,
    kind: str = "linear",
    low: float = 0.0,
    high: float = 1.0,
) -> float:
    r"""A weight that rises from ``low`` to ``high`` over ``length`` steps after ``start``.

    With progress :math:`u = \operatorname{clip}((t - t_0) / n, 0, 1)`:

    .. math::

        w_{\text{linear}}(t) = \text{low} + (\text{high} - \text{low})\, u, \qquad
        w_{\text{cosine}}(t) = \text{low} + (\text{high} - \text{low})\,
        \tfrac12 \left(1 - \cos \pi u\right)

    and ``"step"`` jumps from ``low`` to ``high`` at :math:`t = t_0 + n`. Warm-up
    ramps like these bring an auxiliary loss in gradually instead of all at
    once; swap ``low`` and ``high`` for a decay.

    Args:
        step: the current step (or epoch) :math:`t`.
        start: the step :math:`t_0` at which the ramp begins. Default: ``0``.
        length: the ramp's length :math:`n` in steps (at least 1).
        kind: ``"linear"``, ``"cosine"`` or ``"step"``. Default: ``"linear"``.
        low: the weight before the ramp. Default: ``0.0``.
        high: the weight after it. Default: ``1.0``.

    Returns:
        The weight at ``step``, a Python float (computed on the host, no device sync).

    Example:
        >>> [ramp(t, length=4) for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
        >>> round(ramp(2, length=4, kind="cosine"), 3)
        0.5
    """
    step = check_int(step, "step", minimum=0)
    start = check_int(start, "start", minimum=0)
    length = check_int(length, "length", minimum=1)
    check_choice(kind, "kind", _KINDS)
    low = check_float(low, "low")
    high = check_float(high, "high")
    u = min(max((step - start) / length, 0.0), 1.0)
    if kind == "cosine":
        u = 0.5 * (1.0 - math.cos(math.pi * u))
    elif kind == "step":
        u = 1.0 if u >= 1.0 else 0.0
    return low + (high - low) * u


class SmoothedGate:
    r"""Switch a loss on when a watched loss, smoothed by an EMA, falls below a threshold.

    Staged training ("train task 1 until its loss is low, then add task 2") is
    often written as ``if loss1.item() < threshold``. That test flickers on
    mini-batch noise, switching back and forth, and ``.item()`` forces a device
    synchronisation at every step. This gate smooths the watched loss with an
    exponential moving average kept on the loss's device,

    .. math::

        m_t = \beta\, m_{t-1} + (1 - \beta)\, L_t, \qquad m_0 = L_0,

    opens once :math:`m_t < \tau`, and (by default) stays open. :meth:`update`
    returns the gate as a 0-d tensor (0 or 1) that multiplies the gated loss, so
    the training step never waits for the device.

    A NaN or infinite watched loss would poison the average for good (the gate
    would never open again). On the CPU it is refused with a ``ValueError``
    (one cheap host read per update); on an accelerator, where that read would
    stall the device, a non-finite value is ignored: the average and the gate
    keep their previous values.

    Args:
        threshold: :math:`\tau`, the level the smoothed loss must fall below.
        decay: :math:`\beta \in [0, 1)`; 0 means no smoothing (the flickering
            per-batch test). Default: ``0.9``.
        latch: keep the gate open once it has opened. Default: ``True``.

    Example:
        >>> gate = SmoothedGate(threshold=1.0, decay=0.5)
        >>> [float(gate.update(torch.tensor(v))) for v in (3.0, 0.5, 0.5, 0.5, 2.0)]
        [0.0, 0.0, 0.0, 1.0, 1.0]
        >>> gate
        SmoothedGate(threshold=1.0, decay=0.5, latch=True)
    """

    def __init__(self, threshold: float, *, decay: float = 0.9, latch: bool = True) -> None:
        self.threshold = check_float(threshold, "threshold")
        self.decay = check_float(decay, "decay", minimum=0.0, maximum=1.0, open_maximum=True)
        self.latch = check_bool(latch, "latch")
        self.average: Tensor | None = None
        self.gate: Tensor | None = None

    def update(self, loss: Tensor) -> Tensor:
        r"""Feed one step's watched loss; return the gate (0-d tensor, 0 or 1) for this step."""
        value = check_scalar(loss, "loss").detach()
        check_real_floating(value, "`loss`")
        value = value.to(torch.promote_types(value.dtype, torch.float32))  # float64 stays
        finite = torch.isfinite(value)
        if value.device.type == "cpu" and not bool(finite):
            raise ValueError(
                f"`loss` must be finite, got {float(value)}: a NaN would stop the gate "
                "from ever opening"
            )
        if self.average is None or self.gate is None:
            self.average = torch.full((), math.inf, device=value.device, dtype=value.dtype)
            self.gate = torch.zeros((), device=value.device)
        ema = self.decay * self.average + (1.0 - self.decay) * value
        started = torch.isfinite(self.average)  # the first finite value starts the average
        self.average = torch.where(finite, torch.where(started, ema, value), self.average)
        below = (self.average < self.threshold).float()
        self.gate = torch.maximum(self.gate, below) if self.latch else below
        return self.gate

    @property
    def is_open(self) -> bool:
        r"""Whether the gate is open now; this reads the device, so avoid it in the hot loop."""
        return bool(self.gate) if self.gate is not None else False

    def reset(self) -> None:
        r"""Forget the average and close the gate."""
        self.average = None
        self.gate = None

    def __repr__(self) -> str:
        return f"SmoothedGate(threshold={self.threshold}, decay={self.decay}, latch={self.latch})"
