r"""The multi-objective view: Pareto fronts and the min-norm (MGDA) direction.

Several losses are several objectives. :func:`pareto_front` marks the points
(e.g. models scored on every loss) that no other point beats on every objective;
:func:`min_norm_weights` and :func:`mgda` find the combination of per-task
gradients along which every task's loss decreases (Désidéri 2012; Sener & Koltun
2018). The training strategy built on them, :class:`multiloss_helpers.MGDA`, lives
with the other weightings in :mod:`multiloss_helpers.weighting`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._linalg import unit_rows
from ._validation import check_float, check_grad_matrix, check_int, describe

__all__ = ["mgda", "min_norm_weights", "pareto_front"]


def pareto_front(points: Tensor) -> Tensor:
    r"""A mask of the non-dominated rows of ``points``, every objective minimised.

    Row :math:`a` is *dominated* when another row :math:`b` is at least as good
    on every objective and strictly better on one:

    .. math::

        b \prec a \iff b_k \le a_k \ \forall k \ \text{ and } \ \exists k:\ b_k < a_k

    The Pareto front is the set of rows that no row dominates. Equal rows do not
    dominate each other, so duplicates on the front are all kept. Maximise an
    objective by negating its column. The comparison is all-pairs, :math:`O(N^2 K)`
    memory-light enough for the few thousand points of a weight sweep.

    Args:
        points: ``(N, K)`` real values, one row per point (e.g. per model), one
            column per objective; NaN is refused (it is neither better nor worse).

    Returns:
        A bool tensor of shape ``(N,)``, ``True`` for the non-dominated rows.

    Example:
        >>> points = torch.tensor([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [2.0, 2.0], [4.0, 1.0]])
        >>> pareto_front(points)  # (3, 3) is dominated by (2, 2); the duplicate stays
        tensor([ True,  True, False,  True,  True])
    """
    if not isinstance(points, Tensor):
        raise TypeError(f"`points` must be an (N, K) tensor, got {describe(points)}")
    if points.dim() != 2 or points.shape[1] == 0:
        raise ValueError(f"`points` must have shape (N, K) with K >= 1, got {tuple(points.shape)}")
    if points.is_complex() or points.dtype == torch.bool:
        raise TypeError(f"`points` must hold real numbers, got {points.dtype}")
    if points.is_floating_point() and bool(torch.isnan(points).any()):
        raise ValueError("`points` must not contain NaN: a NaN objective cannot be compared")
    mask = torch.ones(points.shape[0], dtype=torch.bool, device=points.device)
    for start in range(0, points.shape[0], 1024):  # bounded memory: 1024 x N x K at a time
        block = points[start : start + 1024]
        no_worse = (points[None, :, :] <= block[:, None, :]).all(dim=2)  # [a, b]: b <= a
        better = (points[None, :, :] < block[:, None, :]).any(dim=2)
        mask[start : start + 1024] = ~(no_worse & better).any(dim=1)
    return mask


# ------------------------------------------------------------ the min-norm direction

_RIDGE = 1e-8  # relative to the largest squared gradient norm, which is 1 here


def _project_to_simplex(v: Tensor) -> Tensor:
    """The Euclidean projection of ``v`` onto the probability simplex (sort-based, sync-free)."""
    u, _ = torch.sort(v, descending=True)
    cumulative = u.cumsum(0) - 1
    k = torch.arange(1, len(v) + 1, dtype=v.dtype, device=v.device)
    count = (u - cumulative / k > 0).sum().clamp_min(1)
    theta = cumulative.gather(0, (count - 1).reshape(1)) / count
    return (v - theta).clamp_min(0)


def _min_norm_two(grads: Tensor) -> Tensor:
    r"""Exact minimiser of :math:`\lVert \gamma g_0 + (1 - \gamma) g_1 \rVert` over [0, 1].

    :math:`\gamma = \operatorname{clip}((g_1 - g_0) \cdot g_1 / \lVert g_1 - g_0 \rVert^2, 0, 1)`,
    with the difference formed from the rows themselves: from the Gram matrix,
    :math:`a + c - 2b` cancels for nearly parallel gradients (``[[1, 0], [1, 1e-4]]`` in
    float32 gave 0 there, hence ``[0.5, 0.5]`` instead of ``[1, 0]``). The rows are first
    scaled by a power of two (exact), so the difference cannot overflow; the ratio of
    norms is taken in float64, so it cannot either.
    """
    _, exponent = torch.frexp(grads.abs().amax())
    half = exponent // 2  # two steps: 2 ** -exponent alone overflows float32 for subnormals
    rows = torch.ldexp(torch.ldexp(grads, -half), half - exponent)  # exact, entries below 1
    diff = rows[1] - rows[0]
    unit, norms = unit_rows(torch.stack([diff, rows[1]]))
    cosine = (unit[0] @ unit[1]).double()
    ratio = norms[1].double() / norms[0].double().clamp_min(torch.finfo(torch.float64).tiny)
    gamma = torch.where(cosine > 0, (cosine * ratio).clamp_max(1.0), 0.0)
    gamma = torch.where(norms[0] > 0, gamma, 0.5)  # equal gradients share the weight
    return torch.stack([gamma, 1 - gamma])


def _affine_min_norm(gram: np.ndarray) -> np.ndarray:
    """The weights summing to 1 (of any sign) of the min-norm point of the affine hull."""
    size = len(gram)
    system = np.ones((size + 1, size + 1))
    system[:size, :size] = gram
    system[size, size] = 0.0
    rhs = np.zeros(size + 1)
    rhs[size] = 1.0
    solution = np.linalg.lstsq(system, rhs, rcond=None)[0][:size]
    return solution / solution.sum()


def _min_norm_active_set(gram: np.ndarray, max_iter: int, tol: float) -> np.ndarray:
    """Wolfe's min-norm-point algorithm (1976) in weight space, on the host in float64.

    Exact up to rounding in a finite number of steps: each major cycle adds the
    vertex that most violates the optimality condition, each minor cycle moves to
    the affine minimum of the active vertices or drops the first one that reaches 0.
    """
    num_tasks = len(gram)
    start = int(np.argmin(np.diag(gram)))
    weights = np.zeros(num_tasks)
    weights[start] = 1.0
    active = [start]
    threshold = tol * float(np.diag(gram).max())
    for _ in range(max_iter):
        product = gram @ weights
        candidate = int(np.argmin(product))
        if product[candidate] >= weights @ product - threshold or candidate in active:
            break
        active.append(candidate)
        for _ in range(num_tasks + 1):  # minor cycles: at most one drop per active vertex
            affine = _affine_min_norm(gram[np.ix_(active, active)])
            current = weights[active]
            if (affine > 1e-12).all():
                weights[:] = 0.0
                weights[active] = affine
                break
            falling = affine < current
            if not falling.any():
                break
            step = np.min(current[falling] / (current[falling] - affine[falling]))
            moved = current + min(step, 1.0) * (affine - current)
            weights[:] = 0.0
            weights[active] = np.clip(moved, 0.0, None)
            active = [i for i in active if weights[i] > 1e-12]
            weights /= weights.sum()
    return weights


def _min_norm_many(gram: Tensor, max_iter: int, tol: float) -> Tensor:
    """Accelerated projected gradient (FISTA with restart) on ``w @ gram @ w`` over the simplex.

    A fixed number of iterations that never reads a value back: the method for
    accelerators, where a data-dependent loop would wait for the device.
    """
    num_tasks = gram.shape[0]
    w = torch.full((num_tasks,), 1.0 / num_tasks, dtype=gram.dtype, device=gram.device)
    # the step 1 / L with L = 2 * largest eigenvalue, from a few power iterations
    v = torch.linspace(1.0, 2.0, num_tasks, dtype=gram.dtype, device=gram.device)
    for _ in range(20):
        v = gram @ v
        v = v / v.norm().clamp_min(torch.finfo(gram.dtype).tiny)
    step = 1.0 / (2.02 * (v @ gram @ v).clamp_min(torch.finfo(gram.dtype).tiny))
    y, momentum, value = w, 1.0, w @ gram @ w
    for _ in range(max_iter):
        w_next = _project_to_simplex(y - 2 * step * (gram @ y))
        value_next = w_next @ gram @ w_next
        momentum_next = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
        extrapolated = w_next + ((momentum - 1) / momentum_next) * (w_next - w)
        y = torch.where(value_next > value, w_next, extrapolated)  # restart when it rises
        w, value, momentum = w_next, value_next, momentum_next
    return w


def min_norm_weights(grads: Tensor, *, max_iter: int = 200, tol: float = 1e-12) -> Tensor:
    r"""The weights on the simplex whose combination of the gradients has the smallest norm.

    .. math::

        w^\star = \operatorname*{arg\,min}_{w \ge 0,\ \sum_i w_i = 1}
        \Bigl\lVert \sum_i w_i g_i \Bigr\rVert^2

    The direction :math:`d = \sum_i w^\star_i g_i` is the multiple-gradient
    descent direction (:func:`mgda`): at the optimum :math:`g_i \cdot d \ge
    \lVert d \rVert^2` for every task (with equality where :math:`w^\star_i > 0`),
    so a small step along :math:`-d` decreases every task's loss, unless
    :math:`d = 0` and the point is Pareto-stationary. From Sener & Koltun 2018,
    "Multi-Task Learning as Multi-Objective Optimization",
    `arXiv:1810.04650 <https://arxiv.org/abs/1810.04650>`_ (after Désidéri 2012).

    With :math:`T = 2` the weights are exact:
    :math:`w_0 = \operatorname{clip}\bigl((g_1 - g_0) \cdot g_1 /
    \lVert g_0 - g_1 \rVert^2, 0, 1\bigr)` (``0.5`` for equal gradients), computed from
    the difference of the rows, which keeps nearly parallel gradients apart (a Gram matrix
    would cancel them). With more tasks everything runs on the :math:`T \times T` Gram
    matrix, computed after dividing every row by the largest gradient norm (the weights
    do not change, and no square overflows). CPU tensors are computed in float64 (the
    result has the input's dtype); on an accelerator, in float32 at least. With more
    tasks, for CPU tensors, Wolfe's min-norm-point algorithm (1976, an active-set
    method, exact in finitely many steps) runs on the host in float64 and stops
    when :math:`\lVert d \rVert^2 - \min_i g_i \cdot d` is below ``tol`` times the
    largest squared gradient norm. On an accelerator, where a data-dependent loop
    would wait for the device at every step, ``max_iter`` iterations of an
    accelerated projected-gradient method (FISTA with restart) run on the device
    instead; Sener & Koltun use Frank-Wolfe on the same problem, which converges
    more slowly. A ridge of :math:`10^{-8}` times the largest squared norm on the
    Gram matrix makes the weights unique where several give the same direction:
    the most even ones win (identical gradients share their weight equally), so
    permuting the tasks permutes the weights. NaN and inf are refused for CPU
    tensors.

    Args:
        grads: ``(T, P)`` per-task gradients, e.g. from :func:`per_loss_grads`.
        max_iter: for :math:`T > 2`: the most cycles on the CPU, the number of
            iterations on an accelerator. Default: ``200``.
        tol: the relative optimality gap at which the CPU method stops.
            Default: ``1e-12``.

    Returns:
        The weights, shape ``(T,)``, non-negative, summing to 1, in the input's dtype,
        without a graph: no gradient flows through them (:func:`mgda` keeps the
        gradients' graph, with the weights as constants).

    Example:
        >>> g = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
        >>> w = min_norm_weights(g)
        >>> w
        tensor([0.8000, 0.2000])
        >>> w @ g  # the shortest vector between the two gradients
        tensor([0.8000, 0.4000])
    """
    grads = check_grad_matrix(grads)
    return _weights_unrounded(grads, max_iter, tol).to(grads.dtype)


def _weights_unrounded(grads: Tensor, max_iter: int, tol: float) -> Tensor:
    """:func:`min_norm_weights` in the dtype it computes in (float64 on the CPU).

    Checks ``max_iter``, ``tol`` and finiteness; ``grads`` must have passed
    ``check_grad_matrix``. :func:`mgda` combines the rows with these weights before
    any rounding to a low-precision input dtype.
    """
    grads = grads.detach()  # the weights are constants, as in the paper
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    tol = check_float(tol, "tol", minimum=0.0)
    if grads.device.type == "cpu" and not bool(torch.isfinite(grads).all()):
        raise ValueError("`grads` must be finite, got NaN or inf entries")
    num_tasks = grads.shape[0]
    if num_tasks == 1:
        return torch.ones(1, dtype=grads.dtype, device=grads.device)
    if grads.device.type == "cpu":  # float64 on the host: a Gram matrix keeps its digits
        grads = grads.double()
    if num_tasks == 2:
        return _min_norm_two(grads)
    unit, norms = unit_rows(grads)
    scaled = norms / norms.max().clamp_min(torch.finfo(norms.dtype).tiny)
    gram = (unit @ unit.T) * scaled[:, None] * scaled[None, :]
    # a tiny ridge makes the minimiser unique: among equally short combinations,
    # the most even weights (identical gradients share their weight equally)
    # (added in float64 on the CPU: 1 + 1e-8 is 1 in float32, and the ridge was lost)
    if gram.device.type == "cpu":
        ridged = gram.double().numpy() + _RIDGE * np.eye(num_tasks)
        exact = _min_norm_active_set(ridged, max_iter, tol)
        return torch.from_numpy(exact)
    gram = gram + _RIDGE * torch.eye(num_tasks, dtype=gram.dtype, device=gram.device)
    return _min_norm_many(gram, max_iter, tol)


def mgda(grads: Tensor, *, max_iter: int = 200, tol: float = 1e-12) -> Tensor:
    r"""The MGDA direction: the min-norm element of the convex hull of the gradients.

    .. math::

        d = \sum_i w^\star_i g_i, \qquad w^\star = \texttt{min\_norm\_weights}(G)

    Descending along :math:`d` decreases every task's loss to first order
    (:math:`g_i \cdot d \ge \lVert d \rVert^2 \ge 0`). Sener & Koltun 2018,
    "Multi-Task Learning as Multi-Objective Optimization",
    `arXiv:1810.04650 <https://arxiv.org/abs/1810.04650>`_.

    Args:
        grads: ``(T, P)`` per-task gradients.
        max_iter: as in :func:`min_norm_weights`. Default: ``200``.
        tol: as in :func:`min_norm_weights`. Default: ``1e-12``.

    Returns:
        The direction, shape ``(P,)``, in the input's dtype (float16 and bfloat16
        gradients are combined in float32 with unrounded weights); write it into the
        parameters with :func:`assign_grad`.

    Example:
        >>> mgda(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))  # d . g_i = 0.2 = |d|^2 for both
        tensor([0.2000, 0.4000])
    """
    grads = check_grad_matrix(grads)
    # the weights stay in their compute dtype (float64 on the CPU): rounded to a float16
    # or bfloat16 input's dtype first, they would cost the direction digits
    weights = _weights_unrounded(grads, max_iter, tol)
    compute = torch.promote_types(grads.dtype, torch.float32)
    return (weights.to(compute) @ grads.to(compute)).to(grads.dtype)
