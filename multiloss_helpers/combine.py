r"""``MultiTaskLoss``: named losses, fixed weights, one total and every component."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real

import torch
from torch import Tensor, nn

from ._validation import check_module_names, check_real_floating, describe

__all__ = ["LossResult", "MultiTaskLoss"]


@dataclass(frozen=True)
class LossResult:
    r"""What a combiner returns: the total to backpropagate and what it is made of.

    Attributes:
        total: the weighted sum, a scalar tensor with a graph.
        components: the *unweighted* loss of each task, with their graphs.
        weights: the weight each component was multiplied by.

    Example:
        >>> result = LossResult(torch.tensor(3.0), {"a": torch.tensor(3.0)}, {"a": 1.0})
        >>> float(result.total), list(result.components)
        (3.0, ['a'])
    """

    total: Tensor
    components: dict[str, Tensor]
    weights: dict[str, float | Tensor] = field(default_factory=dict)


def _check_weight(name: str, value: object) -> float | Tensor:
    if isinstance(value, Tensor):
        if not value.is_floating_point():
            raise TypeError(
                f"`weights[{name!r}]` must be a floating-point tensor, got {value.dtype}"
            )
        if value.numel() != 1:
            raise ValueError(
                f"`weights[{name!r}]` must be a scalar, got shape {tuple(value.shape)}"
            )
        # the value check reads the tensor: only on the CPU, where that costs no device sync
        if value.device.type == "cpu" and not bool(torch.isfinite(value) & (value >= 0)):
            raise ValueError(f"`weights[{name!r}]` must be finite and >= 0, got {float(value)}")
        return value.reshape(())
    if isinstance(value, bool) or not isinstance(value, Real):  # NumPy scalars too
        raise TypeError(f"`weights[{name!r}]` must be a number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`weights[{name!r}]` must be finite and >= 0, got {value}")
    return float(value)


class MultiTaskLoss(nn.Module):
    r"""A weighted sum of named losses that also returns each component.

    .. math::

        L_{\text{total}} = \sum_{i} w_i \, L_i(\hat y_i, y_i)

    Each task has a name, a loss callable ``loss(output, target)`` and a weight
    (1 by default). ``forward(outputs, targets)`` takes two mappings keyed by
    task name, typically a multi-head model's output and a batch's targets, and
    returns a :class:`LossResult` whose ``components`` are the unweighted losses:
    what you log and plot, while ``total`` is what you call ``backward()`` on.
    Loss modules are registered as submodules, so their buffers (a class
    ``weight``, say) follow ``.to(device)``.

    Args:
        losses: maps a task name to a loss callable, e.g. ``F.cross_entropy`` or
            ``nn.MSELoss()``.
        weights: maps task names to non-negative finite weights (numbers, or 0-d
            floating tensors); a task left out gets weight 1. A negative or
            non-finite weight is a ``ValueError``; for a tensor on an accelerator
            that value check is skipped, since it would synchronise with the
            device. Default: ``None``, every weight 1.

    Example:
        >>> import torch.nn.functional as F
        >>> criterion = MultiTaskLoss({"cls": F.cross_entropy, "reg": F.mse_loss},
        ...                           weights={"reg": 0.5})
        >>> outputs = {"cls": torch.zeros(4, 3), "reg": torch.ones(4, 1)}
        >>> targets = {"cls": torch.tensor([0, 1, 2, 0]), "reg": torch.zeros(4, 1)}
        >>> result = criterion(outputs, targets)
        >>> round(float(result.total), 4)
        1.5986
        >>> {k: round(float(v), 4) for k, v in result.components.items()}
        {'cls': 1.0986, 'reg': 1.0}
    """

    def __init__(
        self,
        losses: Mapping[str, Callable[[Tensor, Tensor], Tensor]],
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        losses = check_module_names(losses, "losses", "task name to loss callable")
        for name, fn in losses.items():
            if not callable(fn):
                raise TypeError(f"`losses[{name!r}]` must be callable, got {describe(fn)}")
        self.names = list(losses)
        self.loss_modules = nn.ModuleDict(
            {k: v for k, v in losses.items() if isinstance(v, nn.Module)}
        )
        self._loss_functions = {k: v for k, v in losses.items() if not isinstance(v, nn.Module)}
        self.weights = self._merge_weights(weights)

    def _merge_weights(
        self, weights: Mapping[str, float | Tensor] | None
    ) -> dict[str, float | Tensor]:
        if weights is None:
            return {name: 1.0 for name in self.names}
        if not isinstance(weights, Mapping):
            raise TypeError(
                f"`weights` must be a mapping of task name to weight, got {describe(weights)}"
            )
        unknown = sorted(set(weights) - set(self.names))
        if unknown:
            raise ValueError(f"`weights` names {unknown} are not tasks; the tasks are {self.names}")
        return {name: _check_weight(name, weights.get(name, 1.0)) for name in self.names}

    def loss_fn(self, name: str) -> Callable[[Tensor, Tensor], Tensor]:
        r"""The loss callable of task ``name``."""
        if name in self.loss_modules:
            return self.loss_modules[name]
        if name in self._loss_functions:
            return self._loss_functions[name]
        raise ValueError(f"`name` must be one of the tasks {self.names}, got {name!r}")

    def forward(
        self,
        outputs: Mapping[str, Tensor],
        targets: Mapping[str, Tensor],
        *,
        weights: Mapping[str, float | Tensor] | None = None,
    ) -> LossResult:
        r"""Compute every task's loss and their weighted sum.

        Args:
            outputs: the model's output per task.
            targets: the target per task.
            weights: weights for this call only (e.g. from a schedule), merged
                over the defaults and checked as in the constructor; 0-d tensors
                are accepted so that a weight computed on the device needs no
                synchronisation. Default: ``None``, the constructor's weights.
        """
        for label, given in (("outputs", outputs), ("targets", targets)):
            if not isinstance(given, Mapping):
                raise TypeError(
                    f"`{label}` must be a mapping of task name to tensor, got {describe(given)}"
                )
            if set(given) != set(self.names):
                raise ValueError(
                    f"`{label}` names {sorted(given)} do not match the tasks {sorted(self.names)}"
                )
        use = dict(self.weights)
        if weights is not None:
            use.update(self._merge_weights({**self.weights, **weights}))
        components = {name: self.loss_fn(name)(outputs[name], targets[name]) for name in self.names}
        for name, value in components.items():
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise ValueError(
                    f"the loss of task {name!r} must be a scalar tensor, got {describe(value)}; "
                    "use reduction='mean' or 'sum'"
                )
            check_real_floating(value, f"the loss of task {name!r}")
        total = torch.stack([use[name] * components[name].reshape(()) for name in self.names]).sum()
        return LossResult(total=total, components=components, weights=use)

    def extra_repr(self) -> str:
        def fn_name(fn: Callable) -> str:
            return getattr(fn, "__name__", type(fn).__name__)

        losses = ", ".join(f"{name!r}: {fn_name(self.loss_fn(name))}" for name in self.names)
        weights = {k: (float(v) if isinstance(v, Tensor) else v) for k, v in self.weights.items()}
        return f"losses={{{losses}}}, weights={weights}"
