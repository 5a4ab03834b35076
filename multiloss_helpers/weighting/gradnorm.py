"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich 2018)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from .._validation import check_float
from ..grads import per_loss_grads
from ._base import check_num_tasks, check_task_vector

__all__ = ["GradNorm"]


class GradNorm:
    """Weights that balance the tasks' gradient norms on the last shared layer.

    With :math:`G_i = \\lVert \\nabla_W\\, w_i L_i \\rVert` on the shared parameters
    :math:`W`, their mean :math:`\\bar G`, and the relative inverse training rate
    :math:`r_i = \\tilde L_i / \\operatorname{mean}_j \\tilde L_j` where
    :math:`\\tilde L_i = L_i(t) / L_i(0)`, GradNorm takes a gradient step on the
    weights :math:`w` (only) for

    .. math::

        L_{\\text{grad}} = \\sum_i \\left| G_i - \\bar G \\, r_i^{\\alpha} \\right|

    (the target :math:`\\bar G r_i^\\alpha` held constant), then renormalises the
    weights to sum to :math:`T`. Tasks that train slowly (large :math:`r_i`) get
    larger gradients. From Chen et al. 2018, "GradNorm: Gradient Normalization for
    Adaptive Loss Balancing in Deep Multitask Networks",
    `arXiv:1711.02257 <https://arxiv.org/abs/1711.02257>`_.

    :meth:`update` computes the weights; it calls no ``backward()`` on the model's
    loss and steps only its own optimiser, over the weights. The training loop then
    backpropagates ``(weights * losses).sum()`` as usual.

    Args:
        num_tasks: :math:`T`.
        alpha: :math:`\\alpha \\ge 0`, the strength of the pull towards equal
            training rates (the paper uses 0.12 to 3; 1.5 is common).
        lr: the learning rate of the weights' own Adam optimiser.

    Example:
        >>> torch.manual_seed(0) and None
        >>> shared = torch.nn.Linear(3, 4)
        >>> heads = [torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)]
        >>> features = shared(torch.randn(8, 3))
        >>> losses = torch.stack([h(features).pow(2).mean() * s for h, s in zip(heads, (1.0, 10.0))])
        >>> gradnorm = GradNorm(num_tasks=2, alpha=1.5)
        >>> weights = gradnorm.update(losses, shared.parameters())
        >>> float(weights.sum())
        2.0
        >>> bool(weights[0] > weights[1])  # the task with the larger gradient is weighted down
        True
    """

    def __init__(self, num_tasks: int, *, alpha: float = 1.5, lr: float = 0.025) -> None:
        self.num_tasks = check_num_tasks(num_tasks)
        self.alpha = check_float(alpha, "alpha", minimum=0.0)
        self.lr = check_float(lr, "lr", minimum=0.0, open_minimum=True)
        self._weights = torch.ones(self.num_tasks, requires_grad=True)
        self._optimizer = torch.optim.Adam([self._weights], lr=self.lr)
        self.initial_losses: Tensor | None = None

    @property
    def weights(self) -> Tensor:
        """The current weights (detached), summing to :math:`T`."""
        return self._weights.detach().clone()

    def update(self, losses: Tensor, shared_params: Iterable[Tensor]) -> Tensor:
        """One GradNorm step on the weights; returns the weights to use for this step.

        Args:
            losses: the ``(T,)`` unweighted task losses, with their graphs (kept).
            shared_params: the last shared layer's parameters :math:`W`.
        """
        check_task_vector(losses, "losses", self.num_tasks)
        if self._weights.device != losses.device:
            with torch.no_grad():
                moved = self._weights.detach().to(losses.device).requires_grad_()
            self._weights = moved
            self._optimizer = torch.optim.Adam([self._weights], lr=self.lr)
        if self.initial_losses is None:
            self.initial_losses = losses.detach().clone()
        grads = per_loss_grads(losses, list(shared_params), retain_graph=True)
        norms = self._weights * grads.norm(dim=1).to(self._weights.dtype)
        rate = (losses.detach() / self.initial_losses).to(self._weights.dtype)
        target = (norms.mean() * (rate / rate.mean()) ** self.alpha).detach()
        grad_loss = (norms - target).abs().sum()
        (self._weights.grad,) = torch.autograd.grad(grad_loss, self._weights)
        self._optimizer.step()
        with torch.no_grad():
            self._weights.clamp_(min=1e-6)
            self._weights.mul_(self.num_tasks / self._weights.sum())
        return self.weights

    def __repr__(self) -> str:
        return f"GradNorm(num_tasks={self.num_tasks}, alpha={self.alpha}, lr={self.lr})"
