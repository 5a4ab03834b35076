r"""MGDA, the multiple-gradient descent algorithm (Désidéri 2012; Sener & Koltun 2018).

The strategy; the direction it follows, :func:`multiloss_helpers.mgda`, and its
weights, :func:`multiloss_helpers.min_norm_weights`, live in
:mod:`multiloss_helpers.multiobjective`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from .._validation import check_int
from ..multiobjective import min_norm_weights
from ._base import Weighting, backward_with_shared, check_losses, check_shared

__all__ = ["MGDA"]


class MGDA(Weighting):
    r"""MGDA as a :class:`Weighting`: the min-norm direction on the shared parameters.

    :meth:`backward` computes the per-task gradients of the ``shared``
    parameters, adds the direction :func:`mgda` of those gradients to their
    ``.grad``, and gives every other parameter (the task heads) the plain
    gradient of :math:`\sum_i L_i`, as in Sener & Koltun's Algorithm 2, where
    each task's own parameters follow their own gradient.

    **Weights.** :attr:`weights` is :math:`T w^\star` (the min-norm weights
    rescaled to sum to :math:`T`), the relative multipliers the shared
    parameters' gradient gives each task in the last step. The shared step itself
    is :math:`\sum_i w^\star_i g_i`, with weights summing to 1, as in the paper.
    This is MGDA on the parameters, not the cheaper MGDA-UB on shared features.

    Args:
        num_tasks: :math:`T`.
        shared: the shared parameters (e.g. ``model.shared_parameters()``): an
            iterable of tensors, not a single tensor.
        max_iter: as in :func:`min_norm_weights`. Default: ``200``.

    Example:
        >>> shared, heads = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        >>> strategy = MGDA(2, shared=shared.parameters())
        >>> out = heads(shared(torch.ones(4, 2)))
        >>> weights = strategy.backward(torch.stack([out[:, 0].mean(), out[:, 1].mean()]))
        >>> weights.shape, float(weights.sum())
        (torch.Size([2]), 2.0)
    """

    last_weights: Tensor

    def __init__(
        self, num_tasks: int, *, shared: Iterable[Tensor] | nn.Module, max_iter: int = 200
    ) -> None:
        super().__init__(num_tasks)
        self.shared = check_shared(shared)
        self.max_iter = check_int(max_iter, "max_iter", minimum=1)
        self.register_buffer("last_weights", torch.ones(self.num_tasks), persistent=False)

    @property
    def weights(self) -> Tensor:
        r""":math:`T w^\star` of the last step (all ones before the first)."""
        return self.last_weights.clone()

    def backward(self, losses: Tensor) -> Tensor:
        losses = check_losses(losses, self.num_tasks)
        found: list[Tensor] = []

        def combine(grads: Tensor) -> Tensor:
            # float32 inside for half gradients: the weights are not rounded to half
            # before they combine the rows
            compute = torch.promote_types(grads.dtype, torch.float32)
            wide = grads.to(compute)
            found.append(min_norm_weights(wide, max_iter=self.max_iter))
            return (found[0] @ wide).to(grads.dtype)

        backward_with_shared(losses, self.shared, combine)
        weights = (self.num_tasks * found[0]).to(device=losses.device, dtype=losses.dtype)
        self.last_weights = weights.detach().clone()
        return weights

    def extra_repr(self) -> str:
        text = f"num_tasks={self.num_tasks}, max_iter={self.max_iter}"
        return text + f", shared=<{len(self.shared)} tensors>"
