r"""PCGrad, gradient surgery (Yu et al. 2020): the function and the strategy."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from typing import Any

import torch
from torch import Tensor, nn

from .._linalg import unit_rows
from .._validation import check_grad_matrix, check_seed, describe
from ..grads import assign_grad
from ._base import Weighting, backward_with_shared, check_losses, check_shared

__all__ = ["PCGrad", "assign_grad", "pcgrad"]


def _as_generator(generator: Any) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, Integral):  # numpy ints too
        raise TypeError(
            f"`generator` must be a torch.Generator, an int seed or None, got {describe(generator)}"
        )
    return torch.Generator().manual_seed(check_seed(generator, "generator"))


def pcgrad(grads: Tensor, *, generator: torch.Generator | int | None = None) -> Tensor:
    r"""Project away the conflicting part of each task's gradient, then sum.

    For each task :math:`i`, visiting the other tasks :math:`j` in a random order,
    whenever the (already projected) :math:`g_i` conflicts with the original
    :math:`g_j` it is projected onto the normal plane of :math:`g_j`:

    .. math::

        g_i \leftarrow g_i - \frac{\min(g_i \cdot g_j, 0)}{\lVert g_j \rVert^2} \, g_j

    and the projected gradients are summed. Gradients that do not conflict are
    left alone, so with no conflict at all the result is the plain sum. From Yu et
    al. 2020, "Gradient Surgery for Multi-Task Learning",
    `arXiv:2001.06782 <https://arxiv.org/abs/2001.06782>`_ (Algorithm 1).

    Every projected gradient is a combination of the original ones, so the
    projections run on the :math:`T \times T` matrix of cosines between the
    normalised gradients: one matrix product plus :math:`O(T^3)` scalar work
    instead of :math:`T^2` passes over the :math:`P` entries. Normalising first
    keeps float32 and float16 gradients of any finite size free of overflow;
    the work is done in float32 (float64 stays float64), the result is returned
    in the input's dtype. The conflict test is a ``min`` rather than an ``if``,
    so no value goes back to the host. Every step is out of place, so gradients that
    carry a graph (``create_graph=True``) can be differentiated through. Non-finite
    gradients are a ``ValueError`` (checked for CPU tensors, as in :func:`mgda`).

    Args:
        grads: ``(T, P)`` per-task gradients, e.g. from :func:`per_loss_grads`.
        generator: the source of the random order: a ``torch.Generator`` (a new
            order on every call), an int seed, or ``None`` for seed 0 (the same
            order on every call, reproducible in every process; torch's global
            generator is never used). With two tasks the order does not matter.
            Default: ``None``.

    Returns:
        The combined gradient, shape ``(P,)``; write it into the parameters with
        :func:`assign_grad`.

    Example:
        >>> g = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
        >>> pcgrad(g)  # g0 loses its part along g1, g1 its part along g0
        tensor([0.5000, 1.5000])
    """
    if not isinstance(grads, Tensor) or grads.dim() != 2 or not grads.is_floating_point():
        raise TypeError(f"`grads` must be a (T, P) floating-point tensor, got {describe(grads)}")
    check_grad_matrix(grads)
    if grads.device.type == "cpu" and not bool(torch.isfinite(grads).all()):
        raise ValueError("`grads` must be finite, got NaN or inf entries")
    gen = _as_generator(generator)
    num_tasks = grads.shape[0]
    # g_i = norm_i * u_i; every projected gradient stays a combination of the unit
    # rows, g_i' = sum_j a_ij u_j, so every dot product comes from the cosines.
    unit, norms = unit_rows(grads)
    cosines = unit @ unit.T
    squared = cosines.diagonal().clamp_min(torch.finfo(cosines.dtype).tiny)  # 0 for a zero row
    basis = torch.eye(num_tasks, dtype=cosines.dtype, device=cosines.device)
    total = torch.zeros_like(norms)
    for i in range(num_tasks):
        order = torch.randperm(num_tasks, generator=gen, device=gen.device).tolist()
        row = norms[i] * basis[i]  # out of place throughout: gradients with a graph work
        for j in order:
            if j == i:
                continue
            dot = row @ cosines[:, j]  # = g_i' . u_j
            row = row - (torch.clamp(dot, max=0.0) / squared[j]) * basis[j]
        total = total + row
    return (total @ unit).to(grads.dtype)


class PCGrad(Weighting):
    r"""PCGrad as a :class:`Weighting`: gradient surgery on the shared parameters.

    :meth:`backward` computes the per-task gradients of the ``shared``
    parameters, combines them with :func:`pcgrad` (a new random order at every
    step, drawn from this strategy's own generator) and adds the result to their
    ``.grad``; every other parameter (the task heads) gets the plain gradient of
    :math:`\sum_i L_i`, as in LibMTL.

    **Weights.** Surgery is not a reweighting: the projected gradient is a
    combination of the task gradients whose coefficients differ per pair of
    tasks, and no weight vector reproduces it. :attr:`weights` therefore reports
    all ones, the multipliers that the non-shared parameters get.

    Args:
        num_tasks: :math:`T`.
        shared: the shared parameters (e.g. ``model.shared_parameters()``): an
            iterable of tensors, not a single tensor.
        seed: seeds the generator of the projection order. Default: ``0``.

    Example:
        >>> shared = torch.nn.Linear(2, 2)
        >>> heads = torch.nn.Linear(2, 2)
        >>> strategy = PCGrad(2, shared=shared.parameters(), seed=0)
        >>> out = heads(shared(torch.ones(4, 2)))
        >>> strategy.backward(torch.stack([out[:, 0].mean(), -out[:, 0].mean()]))
        tensor([1., 1.])
    """

    def __init__(
        self, num_tasks: int, *, shared: Iterable[Tensor] | nn.Module, seed: int = 0
    ) -> None:
        super().__init__(num_tasks)
        self.shared = check_shared(shared)
        self.seed = check_seed(seed, "seed")
        self.generator = torch.Generator().manual_seed(self.seed)

    @property
    def weights(self) -> Tensor:
        """Unit weights, since the surgery is not a reweighting (see the class docstring)."""
        return torch.ones(self.num_tasks)

    def backward(self, losses: Tensor) -> Tensor:
        losses = check_losses(losses, self.num_tasks)
        backward_with_shared(
            losses, self.shared, lambda grads: pcgrad(grads, generator=self.generator)
        )
        return torch.ones(self.num_tasks, device=losses.device, dtype=losses.dtype)

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}, seed={self.seed}, shared=<{len(self.shared)} tensors>"
