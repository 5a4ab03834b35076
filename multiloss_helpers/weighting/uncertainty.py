"""Uncertainty weighting (Kendall, Gal & Cipolla 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import check_num_tasks, check_task_vector

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(nn.Module):
    """Weights learned as homoscedastic task uncertainties.

    Each task gets a learnable log-variance :math:`s_i = \\log \\sigma_i^2`
    (initialised to 0) and the total is

    .. math::

        L = \\sum_i \\tfrac12 e^{-s_i} L_i + \\tfrac12 s_i

    A task whose loss stays large learns a large :math:`\\sigma_i` and is weighted
    down; the :math:`\\tfrac12 s_i` term stops every :math:`\\sigma_i` from growing
    without bound. At the optimum :math:`e^{s_i} = L_i`, so the weight
    :math:`\\tfrac12 e^{-s_i}` is :math:`1 / (2 L_i)`: losses are normalised by
    their own size. This is the form for regression-like losses in Kendall et al.
    2018, "Multi-Task Learning Using Uncertainty to Weigh Losses",
    `arXiv:1705.07115 <https://arxiv.org/abs/1705.07115>`_.

    The log-variances are parameters of this module: **give them to the
    optimiser** (``list(model.parameters()) + list(weighting.parameters())``),
    otherwise they stay at 0 and this is a plain sum divided by 2.

    Args:
        num_tasks: :math:`T`.

    Shape:
        - Input: ``(T,)``, the task losses (with their graphs).
        - Output: scalar.

    Example:
        >>> weighting = UncertaintyWeighting(num_tasks=2)
        >>> weighting
        UncertaintyWeighting(num_tasks=2)
        >>> weighting(torch.tensor([2.0, 4.0]))
        tensor(3., grad_fn=<SumBackward0>)
    """

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = check_num_tasks(num_tasks)
        self.log_vars = nn.Parameter(torch.zeros(self.num_tasks))

    def forward(self, losses: Tensor) -> Tensor:
        """The weighted total, differentiable in the losses and in the log-variances."""
        check_task_vector(losses, "losses", self.num_tasks)
        log_vars = self.log_vars.to(losses.dtype)
        return (0.5 * torch.exp(-log_vars) * losses + 0.5 * log_vars).sum()

    @property
    def weights(self) -> Tensor:
        """The current weights :math:`\\tfrac12 e^{-s_i}` (detached)."""
        return (0.5 * torch.exp(-self.log_vars)).detach()

    def __repr__(self) -> str:
        return f"UncertaintyWeighting(num_tasks={self.num_tasks})"
