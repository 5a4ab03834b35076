r"""``LossHistory``: every named loss component, per step and per epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ._validation import check_choice, check_int, describe

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["LossHistory"]

SPLITS = ("train", "val")


class LossHistory:
    r"""A record of named loss components during training.

    Steps are training mini-batches; epochs hold one mean value per component
    for each split (``"train"`` and ``"val"``). Step values may be logged as
    0-d tensors: they are copied on their device at log time (so a tensor
    changed in place afterwards, or a parameter that keeps training, is
    recorded as it was when logged) and turned into Python floats all at once
    when read, so logging never forces a device synchronisation on the
    training path.

    Task weights that :func:`~multiloss_helpers.fit` applies through a
    weighting strategy are components named ``weight/<task>``; :meth:`weights`
    gathers them.

    :func:`multiloss_helpers.fit` fills one in; a hand-written loop can use
    :meth:`log_step` and :meth:`log_epoch` directly.

    Example:
        >>> history = LossHistory()
        >>> history.log_step({"total": 3.0, "cls": 1.0, "reg": 2.0}, epoch=0)
        >>> history.log_epoch({"total": 2.5, "cls": 0.9, "reg": 1.6}, epoch=0, split="val")
        >>> history.steps("reg")
        [2.0]
        >>> history.epochs("total", split="val")
        [2.5]
        >>> history.to_frame().columns.tolist()
        ['level', 'split', 'epoch', 'step', 'component', 'value']
    """

    def __init__(self) -> None:
        self._components: list[str] = []
        self._step_epochs: list[int] = []
        self._step_values: list[dict[str, Tensor | float]] = []
        self._epoch_rows: dict[str, list[tuple[int, dict[str, Tensor | float]]]] = {
            split: [] for split in SPLITS
        }
        # (record, key) of every value still held as a tensor, resolved on the next read
        self._pending: list[tuple[dict[str, Tensor | float], str]] = []

    # ------------------------------------------------------------------ logging
    def _check_components(self, components: object) -> dict[str, Tensor | float]:
        if not isinstance(components, Mapping) or not components:
            raise TypeError(
                f"`components` must be a non-empty mapping of name to scalar loss, "
                f"got {describe(components)}"
            )
        out: dict[str, Tensor | float] = {}
        for name, value in components.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"component names must be non-empty strings, got {name!r}")
            if isinstance(value, Tensor):
                if value.is_complex() or value.dtype == torch.bool:
                    raise TypeError(
                        f"component {name!r} must be a real scalar tensor or a number, "
                        f"got {value.dtype}"
                    )
                if value.numel() != 1:
                    raise ValueError(
                        f"component {name!r} must be a scalar (one element), got shape "
                        f"{tuple(value.shape)}; reduce it (e.g. `.mean()`) before logging"
                    )
                # a copy on the device (no sync): the caller may change `value` in place
                out[name] = value.detach().reshape(()).clone()
                self._pending.append((out, name))
            elif isinstance(value, Real) and not isinstance(value, bool):
                out[name] = float(value)
            else:
                raise TypeError(
                    f"component {name!r} must be a scalar tensor or a number, got {describe(value)}"
                )
            if name not in self._components:
                self._components.append(name)
        return out

    def log_step(self, components: Mapping[str, Tensor | float], *, epoch: int) -> None:
        r"""Record one training step's components (0-d tensors or numbers), copied."""
        epoch = check_int(epoch, "epoch", minimum=0)
        self._step_values.append(self._check_components(components))
        self._step_epochs.append(epoch)

    def log_epoch(
        self, components: Mapping[str, Tensor | float], *, epoch: int, split: str = "train"
    ) -> None:
        r"""Record one epoch's mean components for ``split`` (``"train"`` or ``"val"``)."""
        epoch = check_int(epoch, "epoch", minimum=0)
        check_choice(split, "split", SPLITS)
        self._epoch_rows[split].append((epoch, self._check_components(components)))

    # ------------------------------------------------------------------ reading
    def _resolve(self) -> None:
        r"""Turn logged tensors into floats with one transfer per device and kind."""
        groups: dict[tuple[torch.device, bool], list[tuple[dict[str, Tensor | float], str]]] = {}
        for record, key in self._pending:
            logged: Tensor = record[key]  # type: ignore[assignment]
            groups.setdefault((logged.device, logged.is_floating_point()), []).append((record, key))
        for (_, floating), items in groups.items():
            tensors: list[Tensor] = [rec[key] for rec, key in items]  # type: ignore[misc]
            if floating:
                # float32 at least (no float64 on MPS), but a float64 value keeps its digits
                wide = any(t.dtype == torch.float64 for t in tensors)
                dtype = torch.float64 if wide else torch.float32
            else:  # integers as int64, exact (float32 rounds 16777217 to 16777216)
                dtype = torch.int64
            values = [float(v) for v in torch.stack([t.to(dtype) for t in tensors]).tolist()]
            for (record, key), value in zip(items, values):
                record[key] = value
        self._pending.clear()

    @property
    def components(self) -> list[str]:
        r"""Component names in the order they were first logged."""
        return list(self._components)

    @property
    def num_steps(self) -> int:
        r"""Number of training steps logged."""
        return len(self._step_values)

    @property
    def num_epochs(self) -> int:
        r"""Number of training epochs logged."""
        return len(self._epoch_rows["train"])

    @property
    def next_epoch(self) -> int:
        r"""The index a new epoch should take, one past every epoch seen (steps included).

        A run stopped in the middle of an epoch has steps but no epoch record for
        it; continuing from ``next_epoch`` keeps its steps apart from the next
        epoch's.
        """
        seen = [*self._step_epochs, *(e for rows in self._epoch_rows.values() for e, _ in rows)]
        return max(seen) + 1 if seen else 0

    @property
    def weight_names(self) -> list[str]:
        r"""The tasks whose weights were logged as ``weight/<task>`` components."""
        prefix = "weight/"
        return [c[len(prefix) :] for c in self._components if c.startswith(prefix)]

    def weights(self, *, level: str = "epoch") -> dict[str, list[float]]:
        r"""The logged task weights, ``{task: values}``, per ``"epoch"`` (mean) or ``"step"``."""
        check_choice(level, "level", ("epoch", "step"))
        read = self.epochs if level == "epoch" else self.steps
        return {task: read(f"weight/{task}") for task in self.weight_names}

    def _check_component(self, component: str) -> None:
        if component not in self._components:
            raise ValueError(
                f"`component` must be one of the logged components {self._components}, "
                f"got {component!r}"
            )

    def steps(self, component: str = "total") -> list[float]:
        r"""The training value of ``component`` at every step (``nan`` where absent)."""
        self._check_component(component)
        self._resolve()
        return [float(r.get(component, math.nan)) for r in self._step_values]

    def epochs(self, component: str = "total", *, split: str = "train") -> list[float]:
        r"""The per-epoch mean of ``component`` for ``split`` (``nan`` where absent)."""
        self._check_component(component)
        check_choice(split, "split", SPLITS)
        self._resolve()
        return [float(r.get(component, math.nan)) for _, r in self._epoch_rows[split]]

    def last(self, component: str = "total", *, split: str = "train") -> float:
        r"""The last per-epoch mean of ``component`` for ``split``."""
        values = self.epochs(component, split=split)
        if not values:
            raise ValueError(f"no epoch has been logged for split {split!r}")
        return values[-1]

    def best_epoch(self, component: str = "total", *, split: str = "val") -> int:
        r"""The epoch at which ``component`` was lowest on ``split``."""
        values = self.epochs(component, split=split)
        if not values:
            raise ValueError(f"no epoch has been logged for split {split!r}")
        epochs = [e for e, _ in self._epoch_rows[split]]
        finite = [(v, e) for v, e in zip(values, epochs) if not math.isnan(v)]
        if not finite:
            raise ValueError(f"component {component!r} was never logged for split {split!r}")
        return min(finite)[1]

    def to_frame(self) -> pd.DataFrame:
        r"""A long DataFrame, one row per value, that seaborn plots directly.

        Columns: ``level`` (``"step"`` or ``"epoch"``), ``split``, ``epoch``,
        ``step`` (the global step index; for epoch rows, the number of steps
        taken by the end of that epoch), ``component`` and ``value``. Task
        weights logged by :func:`~multiloss_helpers.fit` with ``weighting=`` are
        rows whose component is ``weight/<task>``.
        """
        import pandas as pd

        self._resolve()
        rows = []
        for step, (epoch, record) in enumerate(zip(self._step_epochs, self._step_values)):
            rows += [("step", "train", epoch, step, k, v) for k, v in record.items()]
        steps_by_epoch: dict[int, int] = {}
        for step, epoch in enumerate(self._step_epochs):
            steps_by_epoch[epoch] = step + 1
        for split in SPLITS:
            for epoch, record in self._epoch_rows[split]:
                step = steps_by_epoch.get(epoch, 0)
                rows += [("epoch", split, epoch, step, k, v) for k, v in record.items()]
        return pd.DataFrame(rows, columns=["level", "split", "epoch", "step", "component", "value"])

    def __len__(self) -> int:
        return self.num_steps

    def __repr__(self) -> str:
        return (
            f"LossHistory(steps={self.num_steps}, epochs={self.num_epochs}, "
            f"components={self._components})"
        )
