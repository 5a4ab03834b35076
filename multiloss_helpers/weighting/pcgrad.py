"""PCGrad, gradient surgery (Yu et al. 2020), and writing a combined gradient back."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from .._validation import describe

__all__ = ["assign_grad", "pcgrad"]


def pcgrad(grads: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Project away the conflicting part of each task's gradient, then sum.

    For each task :math:`i`, visiting the other tasks :math:`j` in a random order,
    whenever the (already projected) :math:`g_i` conflicts with the original
    :math:`g_j` it is projected onto the normal plane of :math:`g_j`:

    .. math::

        g_i \\leftarrow g_i - \\frac{\\min(g_i \\cdot g_j, 0)}{\\lVert g_j \\rVert^2} \\, g_j

    and the projected gradients are summed. Gradients that do not conflict are
    left alone, so with no conflict at all the result is the plain sum. From Yu et
    al. 2020, "Gradient Surgery for Multi-Task Learning",
    `arXiv:2001.06782 <https://arxiv.org/abs/2001.06782>`_ (Algorithm 1). The
    conflict test is a ``min`` rather than an ``if``, so no value goes back to
    the host, and the projections run on the :math:`T \times T` Gram matrix of the
    gradients (every projected gradient is a combination of the original ones), so
    the cost is one matrix product plus :math:`O(T^3)` scalar work rather than
    :math:`T^2` passes over the :math:`P` entries.

    Args:
        grads: ``(T, P)`` per-task gradients, e.g. from :func:`per_loss_grads`.
        generator: for the random order of the projections.

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
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"`generator` must be a torch.Generator or None, got {describe(generator)}")
    num_tasks = grads.shape[0]
    # Every projected gradient stays a combination of the original ones,
    # g_i' = sum_j c_ij g_j, so the dot products the algorithm needs all come from
    # the T x T Gram matrix: one matrix product instead of T^2 passes over P entries.
    gram = (grads @ grads.T).double()
    squared_norms = gram.diagonal().clamp_min(torch.finfo(torch.float64).tiny)
    coeffs = torch.eye(num_tasks, dtype=torch.float64, device=grads.device)
    for i in range(num_tasks):
        order = torch.randperm(num_tasks, generator=generator).tolist()
        for j in order:
            if j == i:
                continue
            dot = coeffs[i] @ gram[:, j]  # = g_i' . g_j
            coeffs[i, j] -= torch.clamp(dot, max=0.0) / squared_norms[j]
    return coeffs.sum(dim=0).to(grads.dtype) @ grads


def assign_grad(params: Iterable[Tensor], flat_grad: Tensor) -> None:
    """Write a flat gradient into the ``.grad`` of each parameter, in order.

    The inverse of flattening and concatenating: the first ``p.numel()``
    entries go to the first parameter, and so on. Use it after a method that
    combines per-task gradients (such as :func:`pcgrad`) and before
    ``optimizer.step()``.

    Example:
        >>> w, b = torch.zeros(2, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
        >>> assign_grad([w, b], torch.arange(6.0))
        >>> w.grad, b.grad
        (tensor([[0., 1.],
                [2., 3.]]), tensor([4., 5.]))
    """
    params = list(params)
    if not isinstance(flat_grad, Tensor) or flat_grad.dim() != 1:
        raise TypeError(f"`flat_grad` must be a 1-D tensor, got {describe(flat_grad)}")
    total = sum(p.numel() for p in params)
    if flat_grad.numel() != total:
        raise ValueError(
            f"`flat_grad` has {flat_grad.numel()} entries but the parameters have {total}"
        )
    offset = 0
    for p in params:
        chunk = flat_grad[offset : offset + p.numel()].view_as(p).to(p.dtype)
        p.grad = chunk.clone()
        offset += p.numel()
