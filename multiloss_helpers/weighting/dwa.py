r"""Dynamic Weight Average (Liu, Johns & Davison 2019)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_float
from ._base import Weighting, check_task_vector

__all__ = ["DWA"]


class DWA(Weighting):
    r"""Weights from the rate at which each task's loss is falling.

    With :math:`L_i(t)` the mean loss of task :math:`i` over epoch :math:`t`:

    .. math::

        r_i = \frac{L_i(t-1)}{L_i(t-2)}, \qquad
        w_i(t) = T \, \frac{\exp(r_i / \tau)}{\sum_j \exp(r_j / \tau)}

    A task whose loss falls slowly (ratio near 1) gets more weight than one whose
    loss drops fast. The weights sum to :math:`T`; while fewer than two epochs are
    recorded they are all 1. From Liu et al. 2019, "End-to-End Multi-Task Learning
    with Attention", `arXiv:1803.10704 <https://arxiv.org/abs/1803.10704>`_, who use
    :math:`\tau = 2`. It needs only the loss values: no gradients, no parameters.

    The softmax is evaluated on :math:`(r_i - \max_j r_j) / \tau` written in log
    space, so a tiny temperature or a ratio that overflows gives the limit (all
    the weight on the largest ratio) rather than NaN.

    In a training loop driven by the :class:`Weighting` protocol, :meth:`epoch_end`
    records the epoch (it calls ``step``) and ``backward`` applies the
    current weights. The weights follow the device and dtype of the losses.

    Args:
        num_tasks: :math:`T`.
        temperature: :math:`\tau > 0`; larger is closer to equal weights.
            Default: ``2.0``.

    Example:
        >>> dwa = DWA(num_tasks=2)
        >>> dwa.step(torch.tensor([1.0, 1.0]))
        tensor([1., 1.])
        >>> dwa.step(torch.tensor([0.5, 0.9]))  # task 0 falls faster: less weight
        tensor([0.9003, 1.0997])
    """

    def __init__(self, num_tasks: int, temperature: float = 2.0) -> None:
        super().__init__(num_tasks)
        self.temperature = check_float(temperature, "temperature", minimum=0.0, open_minimum=True)
        self.history: list[Tensor] = []
        self._weights: Tensor | None = None

    def step(self, epoch_losses: Tensor) -> Tensor:
        """Record one epoch's mean loss per task; return the weights for the next epoch.

        Args:
            epoch_losses: ``(T,)`` positive, finite mean losses of the epoch (copied).
        """
        losses = check_task_vector(epoch_losses, "epoch_losses", self.num_tasks)
        losses = losses.detach().clone()  # the caller may change its tensor later
        if not bool(torch.isfinite(losses).all()):  # once per epoch: the sync is cheap
            raise ValueError(f"`epoch_losses` must be finite, got {losses.tolist()}")
        if bool((losses <= 0).any()):
            raise ValueError(
                f"`epoch_losses` must be positive to form ratios, got {losses.tolist()}"
            )
        self.history = [*self.history, losses][-2:]
        self._weights = self._compute() if len(self.history) == 2 else torch.ones_like(losses)
        return self._weights.clone()

    def _compute(self) -> Tensor:
        previous, last = self.history
        dtype = torch.promote_types(last.dtype, torch.float32)
        log_ratio = last.to(dtype).log() - previous.to(device=last.device, dtype=dtype).log()
        top = log_ratio.max()
        # (r_i - max r) / tau = -exp(log(max r) + log(1 - r_i / max r) - log tau): no overflow
        gap = torch.exp(top + torch.log(-torch.expm1(log_ratio - top)) - math.log(self.temperature))
        weights = self.num_tasks * torch.softmax(-gap, dim=0)
        return weights.to(last.dtype)

    def step_weights(self, losses: Tensor) -> Tensor:
        if self._weights is None:
            return torch.ones(self.num_tasks, device=losses.device, dtype=losses.dtype)
        if self._weights.device != losses.device:  # once, not a copy per step
            self._weights = self._weights.to(losses.device)
        return self._weights.to(losses.dtype, copy=True)

    def epoch_end(self, epoch_losses: Tensor) -> None:
        """Record the epoch's mean loss per task (:meth:`step`)."""
        self.step(epoch_losses)

    @property
    def weights(self) -> Tensor:
        """The weights for the next epoch (all ones until two epochs are recorded)."""
        if self._weights is None:
            return torch.ones(self.num_tasks)
        return self._weights.clone()

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, temperature={self.temperature}"
