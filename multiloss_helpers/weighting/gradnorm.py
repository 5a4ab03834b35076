r"""GradNorm (Chen, Badrinarayanan, Lee & Rabinovich 2018)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from .._linalg import unit_rows
from .._validation import check_float, check_params
from ..grads import per_loss_grads
from ._base import Weighting, check_losses, check_task_vector

__all__ = ["GradNorm"]


class GradNorm(Weighting):
    r"""Weights that balance the tasks' gradient norms on the last shared layer.

    With :math:`G_i = \lVert \nabla_W\, w_i L_i \rVert` on the shared parameters
    :math:`W`, their mean :math:`\bar G`, and the relative inverse training rate
    :math:`r_i = \tilde L_i / \operatorname{mean}_j \tilde L_j` where
    :math:`\tilde L_i = L_i(t) / L_i(0)`, GradNorm takes a gradient step on the
    weights :math:`w` (only) for

    .. math::

        L_{\text{grad}} = \sum_i \left| G_i - \bar G \, r_i^{\alpha} \right|

    (the target :math:`\bar G r_i^\alpha` held constant, so
    :math:`\partial L_{\text{grad}} / \partial w_i = \operatorname{sign}(G_i - \bar G
    r_i^\alpha) \lVert \nabla_W L_i \rVert`), then renormalises the weights to sum
    to :math:`T`. Tasks that train slowly (large :math:`r_i`) get larger gradients.
    From Chen et al. 2018, "GradNorm: Gradient Normalization for Adaptive Loss
    Balancing in Deep Multitask Networks",
    `arXiv:1711.02257 <https://arxiv.org/abs/1711.02257>`_.

    The step on the weights is an Adam step (torch's defaults: betas 0.9, 0.999,
    eps 1e-8) whose state lives in this module's buffers, so it is kept across
    calls, moved by ``.to(device)`` and saved in ``state_dict()``. The weights
    follow the device and dtype of the losses (lower precisions keep a float32
    state and get their weights in their own dtype). :math:`L_i(0)` is the first
    call's losses: they must be positive (checked for CPU tensors only, as a check
    on an accelerator would stall every step).

    Two ways to drive it:

    - :meth:`update` computes the weights and calls no ``backward()``; the
      training loop then backpropagates ``(weights * losses).sum()``;
    - :meth:`backward` (the :class:`Weighting` protocol, with ``shared`` given
      here) does both.

    Args:
        num_tasks: :math:`T`.
        alpha: :math:`\alpha \ge 0`, the strength of the pull towards equal
            training rates (the paper uses 0.12 to 3). Default: ``1.5``.
        lr: the learning rate of the weights' own Adam step. Default: ``0.025``.
        shared: the last shared layer's parameters :math:`W` (an iterable of
            tensors), needed by :meth:`backward`. Default: ``None``.

    Example:
        >>> torch.manual_seed(0) and None
        >>> shared = torch.nn.Linear(3, 4)
        >>> heads = [torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)]
        >>> features = shared(torch.randn(8, 3))
        >>> scales = (1.0, 10.0)
        >>> losses = torch.stack([h(features).pow(2).mean() * s for h, s in zip(heads, scales)])
        >>> gradnorm = GradNorm(num_tasks=2, alpha=1.5)
        >>> weights = gradnorm.update(losses, shared.parameters())
        >>> float(weights.sum())
        2.0
        >>> bool(weights[0] > weights[1])  # the task with the larger gradient is weighted down
        True
    """

    loss_weights: Tensor
    exp_avg: Tensor
    exp_avg_sq: Tensor

    def __init__(
        self,
        num_tasks: int,
        *,
        alpha: float = 1.5,
        lr: float = 0.025,
        shared: Iterable[Tensor] | nn.Module | None = None,
    ) -> None:
        super().__init__(num_tasks)
        self.alpha = check_float(alpha, "alpha", minimum=0.0)
        self.lr = check_float(lr, "lr", minimum=0.0, open_minimum=True)
        self.shared = (
            None
            if shared is None
            else check_params(shared, "shared", single=False, requires_grad=True)
        )
        self.register_buffer("loss_weights", torch.ones(self.num_tasks))
        self.register_buffer("exp_avg", torch.zeros(self.num_tasks))
        self.register_buffer("exp_avg_sq", torch.zeros(self.num_tasks))
        self.steps = 0
        self.initial_losses: Tensor | None = None

    @property
    def weights(self) -> Tensor:
        """The current weights (detached), summing to :math:`T`."""
        return self.loss_weights.clone()

    def _follow(self, losses: Tensor) -> None:
        """Move the weights and the Adam state to the losses' device and dtype (kept).

        Low-precision losses keep a float32 state: Adam's ``eps`` vanishes in float16.
        """
        dtype = torch.promote_types(losses.dtype, torch.float32)
        if self.loss_weights.device != losses.device or self.loss_weights.dtype != dtype:
            self.to(device=losses.device, dtype=dtype)

    def update(self, losses: Tensor, shared_params: Iterable[Tensor] | nn.Module) -> Tensor:
        """One GradNorm step on the weights; returns the weights to use for this step.

        Args:
            losses: the ``(T,)`` unweighted task losses, with their graphs (kept).
            shared_params: the last shared layer's parameters :math:`W`: an
                iterable of tensors (a single tensor is refused).
        """
        check_task_vector(losses, "losses", self.num_tasks)
        params = check_params(shared_params, "shared_params", single=False, requires_grad=True)
        self._follow(losses)
        current = losses.detach()
        if self.initial_losses is None:
            if current.device.type == "cpu" and not bool((current > 0).all()):
                raise ValueError(
                    "`losses` at the first call are L_i(0), the reference of the training "
                    f"rates: they must be positive, got {current.tolist()}"
                )
            self.initial_losses = current.clone()
        elif current.device.type == "cpu" and bool((current < 0).any()):
            raise ValueError(f"`losses` must be non-negative, got {current.tolist()}")
        grads = per_loss_grads(losses, params, retain_graph=True)
        grad_norms = unit_rows(grads)[1].to(self.loss_weights.dtype)  # no overflow
        norms = self.loss_weights * grad_norms
        rate = current.to(norms.dtype) / self.initial_losses.to(norms)
        target = norms.mean() * (rate / rate.mean()) ** self.alpha
        self._adam_step(torch.sign(norms - target) * grad_norms)
        return self.weights.to(losses.dtype)

    @torch.no_grad()
    def _adam_step(self, grad: Tensor) -> None:
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        self.steps += 1
        self.exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = self.lr / (1 - beta1**self.steps)
        denom = (self.exp_avg_sq / (1 - beta2**self.steps)).sqrt_().add_(eps)
        self.loss_weights.addcdiv_(self.exp_avg, denom, value=-step_size)
        self.loss_weights.clamp_(min=1e-6)
        self.loss_weights.mul_(self.num_tasks / self.loss_weights.sum())

    def backward(self, losses: Tensor) -> Tensor:
        """:meth:`update` on ``shared``, then backpropagate ``(weights * losses).sum()``."""
        if self.shared is None:
            raise ValueError(
                "GradNorm.backward needs the shared parameters: pass "
                "`shared=model.shared_parameters()` (or the last shared layer's) to GradNorm"
            )
        losses = check_losses(losses, self.num_tasks)
        weights = self.update(losses, self.shared)
        (weights * losses).sum().backward()
        return weights

    def extra_repr(self) -> str:
        text = f"num_tasks={self.num_tasks}, alpha={self.alpha}, lr={self.lr}"
        if self.shared is not None:
            text += f", shared=<{len(self.shared)} tensors>"
        return text
