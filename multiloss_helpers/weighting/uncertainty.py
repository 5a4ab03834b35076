r"""Uncertainty weighting (Kendall, Gal & Cipolla 2018)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import Weighting, check_losses, check_task_vector, rescale_to_num_tasks

__all__ = ["UncertaintyWeighting"]


class UncertaintyWeighting(Weighting):
    r"""Weights learned as homoscedastic task uncertainties.

    Each task gets a learnable log-variance :math:`s_i = \log \sigma_i^2`
    (initialised to 0) and the total is

    .. math::

        L = \sum_i \tfrac12 e^{-s_i} L_i + \tfrac12 s_i

    A task whose loss stays large learns a large :math:`\sigma_i` and is weighted
    down; the :math:`\tfrac12 s_i` term stops every :math:`\sigma_i` from growing
    without bound. At the optimum :math:`e^{s_i} = L_i`, so the multiplier
    :math:`\tfrac12 e^{-s_i}` is :math:`1 / (2 L_i)`: losses are normalised by
    their own size. This is the form for regression-like losses in Kendall et al.
    2018, "Multi-Task Learning Using Uncertainty to Weigh Losses",
    `arXiv:1705.07115 <https://arxiv.org/abs/1705.07115>`_.

    The log-variances are parameters of this module: **give them to the
    optimiser** (``list(model.parameters()) + list(weighting.parameters())``),
    otherwise they stay at 0 and this is a plain sum divided by 2.
    :meth:`backward` leaves their gradient in ``log_vars.grad``. Half-precision
    losses are weighted and summed in float32 (the log-variances' gradient
    :math:`\tfrac12 - \tfrac12 e^{-s_i} L_i` is small near the optimum, and
    bfloat16 would round it to 0); the total comes back in the losses' dtype.

    :attr:`weights` follows the protocol of :class:`Weighting`: the multipliers
    :math:`\tfrac12 e^{-s_i}` rescaled to sum to :math:`T`, that is
    :math:`T \operatorname{softmax}(-s)_i` (all ones at the start). The raw
    multipliers are ``0.5 * torch.exp(-weighting.log_vars)``.

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
        >>> weighting.weights
        tensor([1., 1.])
    """

    def __init__(self, num_tasks: int) -> None:
        super().__init__(num_tasks)
        self.log_vars = nn.Parameter(torch.zeros(self.num_tasks))

    def forward(self, losses: Tensor) -> Tensor:
        """The weighted total, differentiable in the losses and in the log-variances."""
        check_task_vector(losses, "losses", self.num_tasks)
        if losses.device != self.log_vars.device:
            raise ValueError(
                f"`losses` are on {losses.device} but the log-variances are on "
                f"{self.log_vars.device}: move the weighting with .to(device) before "
                "building the optimiser"
            )
        # low precision in, float32 inside (a bfloat16 total rounds the log-variances'
        # gradient 0.5 - 0.5 e^{-s} L to 0 near the optimum), the losses' dtype out
        compute = torch.promote_types(
            torch.promote_types(losses.dtype, self.log_vars.dtype), torch.float32
        )
        log_vars = self.log_vars.to(compute)
        total = (0.5 * torch.exp(-log_vars) * losses.to(compute) + 0.5 * log_vars).sum()
        return total.to(losses.dtype)

    def backward(self, losses: Tensor) -> Tensor:
        """Backpropagate :meth:`forward`'s total (the log-variances get gradients too)."""
        self(check_losses(losses, self.num_tasks)).backward()
        return self.weights.to(device=losses.device, dtype=losses.dtype)

    @property
    def weights(self) -> Tensor:
        r"""The multipliers :math:`\tfrac12 e^{-s_i}` rescaled to sum to :math:`T` (detached)."""
        return rescale_to_num_tasks(torch.softmax(-self.log_vars.detach(), dim=0))
