"""Dynamic Weight Average (Liu, Johns & Davison 2019)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_float
from ._base import check_num_tasks, check_task_vector

__all__ = ["DWA"]


class DWA:
    """Weights from the rate at which each task's loss is falling.

    With :math:`L_i(t)` the mean loss of task :math:`i` over epoch :math:`t`:

    .. math::

        r_i = \\frac{L_i(t-1)}{L_i(t-2)}, \\qquad
        w_i(t) = T \\, \\frac{\\exp(r_i / \\tau)}{\\sum_j \\exp(r_j / \\tau)}

    A task whose loss falls slowly (ratio near 1) gets more weight than one whose
    loss drops fast. The weights sum to :math:`T`; while fewer than two epochs are
    recorded they are all 1. From Liu et al. 2019, "End-to-End Multi-Task Learning
    with Attention", `arXiv:1803.10704 <https://arxiv.org/abs/1803.10704>`_, who use
    :math:`\\tau = 2`. It needs only the loss values: no gradients, no parameters.

    Args:
        num_tasks: :math:`T`.
        temperature: :math:`\\tau > 0`; larger is closer to equal weights.

    Example:
        >>> dwa = DWA(num_tasks=2)
        >>> dwa.step(torch.tensor([1.0, 1.0]))
        tensor([1., 1.])
        >>> dwa.step(torch.tensor([0.5, 0.9]))  # task 0 falls faster: less weight
        tensor([0.9003, 1.0997])
    """

    def __init__(self, num_tasks: int, temperature: float = 2.0) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.temperature = check_float(temperature, "temperature", minimum=0.0, open_minimum=True)
        self.history: list[Tensor] = []

    def step(self, epoch_losses: Tensor) -> Tensor:
        """Record one epoch's mean loss per task; return the weights for the next epoch."""
        losses = check_task_vector(epoch_losses, "epoch_losses", self.num_tasks).detach()
        if bool((losses <= 0).any()):
            raise ValueError(
                f"`epoch_losses` must be positive to form ratios, got {losses.tolist()}"
            )
        self.history = (self.history + [losses])[-2:]
        return self.weights

    @property
    def weights(self) -> Tensor:
        """The weights for the next epoch (all ones until two epochs are recorded)."""
        if len(self.history) < 2:
            ref = self.history[-1] if self.history else torch.zeros(self.num_tasks)
            return torch.ones_like(ref)
        ratio = self.history[-1] / self.history[-2]
        return self.num_tasks * torch.softmax(ratio / self.temperature, dim=0)

    def __repr__(self) -> str:
        return f"DWA(num_tasks={self.num_tasks}, temperature={self.temperature})"
