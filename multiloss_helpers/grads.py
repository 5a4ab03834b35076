r"""Gradient tools: per-loss gradients, conflict, flattening ``.grad`` and writing it back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ._linalg import unit_rows
from ._validation import check_grad_matrix, check_params, check_real_floating, describe

__all__ = ["assert_connected", "assign_grad", "flat_grad", "grad_cosine", "per_loss_grads"]


def _as_loss_list(losses: Sequence[Tensor] | Tensor) -> list[Tensor]:
    if isinstance(losses, Tensor):
        if losses.dim() != 1 or len(losses) == 0:
            raise ValueError(
                f"`losses` as a tensor must be 1-D with one loss per entry, got shape "
                f"{tuple(losses.shape)}"
            )
        items = list(losses.unbind())
    elif isinstance(losses, Sequence) and not isinstance(losses, (str, bytes)) and losses:
        items = list(losses)
    else:
        raise TypeError(
            f"`losses` must be a non-empty list of scalar tensors or a 1-D tensor, "
            f"got {describe(losses)}"
        )
    for i, loss in enumerate(items):
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(f"`losses[{i}]` must be a scalar tensor, got {describe(loss)}")
        if loss.is_complex():  # an integer loss gets the no-graph message below
            check_real_floating(loss, f"`losses[{i}]`")
        if not loss.requires_grad:
            raise ValueError(
                f"`losses[{i}]` does not require grad: it has no graph to differentiate "
                "(was it built with torch.tensor(...), .item() or under torch.no_grad()?)"
            )
    return [loss.reshape(()) for loss in items]


def _common_dtype(params: Sequence[Tensor]) -> torch.dtype:
    """The dtype that holds every parameter's values (float64 with float32 -> float64)."""
    dtype = params[0].dtype
    for p in params[1:]:
        dtype = torch.promote_types(dtype, p.dtype)
    return dtype


def per_loss_grads(
    losses: Sequence[Tensor] | Tensor,
    params: Iterable[Tensor] | Tensor | nn.Module,
    *,
    retain_graph: bool = False,
) -> Tensor:
    r"""The gradient of each loss with respect to the same parameters, one row per loss.

    .. math::

        G = \begin{bmatrix} \nabla_\theta L_1 \\ \vdots \\ \nabla_\theta L_T \end{bmatrix}
        \in \mathbb{R}^{T \times P},
        \qquad \textstyle\sum_i G_i = \nabla_\theta \sum_i L_i

    Row ``i`` equals ``torch.autograd.grad(losses[i], params)`` flattened and
    concatenated; a parameter that a loss does not reach contributes zeros.
    The rows are computed by a loop of ``autograd.grad`` that keeps the graph
    until the last loss: on the CPU this measured faster and much leaner than
    the vmap-batched ``is_grads_batched`` alternative (``make bench``).

    Pass the shared features (a tensor inside the graph) instead of the
    parameters to get the cheap feature-level gradients used by MGDA-UB
    (Sener & Koltun 2018, `arXiv:1810.04650 <https://arxiv.org/abs/1810.04650>`_).

    Args:
        losses: ``T`` scalar losses (a list, or a 1-D tensor such as
            ``torch.stack([l1, l2])``) that share one graph.
        params: the parameters (an iterable, a module, or ``named_parameters()``
            as a dict), or a single tensor such as shared features.
        retain_graph: keep the graph after the last loss too, e.g. to call
            ``backward()`` afterwards. Default: ``False``.

    Returns:
        A ``(T, P)`` tensor, ``P`` the total number of elements in ``params``,
        on the parameters' device, in the dtype that holds every parameter's
        gradient (the promoted dtype: float32 and float64 parameters give float64).

    Example:
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> g = per_loss_grads([(w ** 2).sum(), 3 * w[0]], [w])
        >>> g
        tensor([[2., 4.],
                [3., 0.]])
    """
    loss_list = _as_loss_list(losses)
    param_list = check_params(params, requires_grad=True)
    if not isinstance(retain_graph, bool):
        raise TypeError(f"`retain_graph` must be a bool, got {describe(retain_graph)}")
    sizes = [p.numel() for p in param_list]
    dtype, device = _common_dtype(param_list), param_list[0].device
    for i, loss in enumerate(loss_list):
        if loss.device != device:
            raise ValueError(
                f"`losses[{i}]` is on {loss.device} but `params` are on {device}: "
                "compute the losses where the parameters live"
            )
    out = torch.empty(len(loss_list), sum(sizes), dtype=dtype, device=device)
    last = len(loss_list) - 1
    for i, loss in enumerate(loss_list):
        grads = torch.autograd.grad(
            loss, param_list, retain_graph=retain_graph or i < last, allow_unused=True
        )
        # write each gradient into its slice of row i: no concatenation, no stacking
        for row_slice, g in zip(out[i].split(sizes), grads):
            if g is None:
                row_slice.zero_()  # a parameter this loss does not reach
            else:
                row_slice.copy_(g.reshape(-1))
    return out


def grad_cosine(grads: Tensor, *, eps: float | None = None) -> Tensor:
    r"""Cosine similarity between every pair of per-loss gradients.

    .. math::

        C_{ij} = \frac{g_i \cdot g_j}{\lVert g_i \rVert \, \lVert g_j \rVert}

    A negative entry means that a step along one task's gradient increases the
    other task's loss to first order: the two tasks *conflict* (Yu et al. 2020,
    "Gradient Surgery for Multi-Task Learning",
    `arXiv:2001.06782 <https://arxiv.org/abs/2001.06782>`_).

    Each row is normalised first (after dividing it by its largest entry), so the
    result does not depend on the gradients' scale: parallel gradients of norm
    1e-12 have cosine 1, and float32 norms near 1e20 do not overflow. A zero
    gradient has cosine 0 with every other gradient (and 1 with itself, as every
    diagonal entry). Computed in float32 at least; returned in the input's dtype.

    Args:
        grads: a ``(T, P)`` matrix of per-loss gradients, e.g. from :func:`per_loss_grads`.
        eps: ignored; kept so that older calls still work. Default: ``None``.

    Returns:
        A symmetric ``(T, T)`` matrix with entries in ``[-1, 1]``.

    Example:
        >>> grad_cosine(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]))
        tensor([[ 1.,  0., -1.],
                [ 0.,  1.,  0.],
                [-1.,  0.,  1.]])
    """
    check_grad_matrix(grads)
    unit, _ = unit_rows(grads)
    cosine = (unit @ unit.T).clamp(-1.0, 1.0)
    cosine.diagonal().fill_(1.0)
    return cosine.to(grads.dtype)


def flat_grad(params: Iterable[Tensor] | nn.Module) -> Tensor:
    r"""The ``.grad`` of every parameter, flattened and concatenated in order.

    A parameter whose ``.grad`` is ``None`` contributes zeros. The inverse of
    :func:`assign_grad`. The result is a new tensor, detached, on the
    parameters' device, in the dtype that holds every parameter's gradient.

    Args:
        params: the parameters: a module or an iterable of tensors (a single
            tensor is refused: iterating over it would give its rows).

    Returns:
        A ``(P,)`` tensor, ``P`` the total number of elements in ``params``.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> net(torch.ones(1, 2)).sum().backward()
        >>> flat_grad(net)
        tensor([1., 1., 1.])
    """
    param_list = check_params(params, single=False)
    dtype = _common_dtype(param_list)
    return torch.cat(
        [
            torch.zeros(p.numel(), dtype=dtype, device=p.device)
            if p.grad is None
            else p.grad.detach().to_dense().reshape(-1).to(dtype)  # sparse: nn.Embedding
            for p in param_list
        ]
    )


def assign_grad(
    params: Iterable[Tensor] | nn.Module, flat_grad: Tensor, *, accumulate: bool = False
) -> None:
    r"""Write a flat gradient into the ``.grad`` of each parameter, in order.

    The inverse of :func:`flat_grad`: the first ``p.numel()`` entries go to the
    first parameter, and so on. Use it after a method that combines per-task
    gradients (such as :func:`pcgrad`) and before ``optimizer.step()``. The
    written gradients are detached copies in each parameter's dtype: no graph is
    kept on ``.grad``.

    Args:
        params: the parameters: a module or an iterable of tensors.
        flat_grad: a 1-D tensor with one entry per parameter element, on the
            parameters' device.
        accumulate: add to the existing ``.grad`` (as ``backward()`` does) instead
            of replacing it. Default: ``False``.

    Example:
        >>> w, b = torch.zeros(2, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
        >>> assign_grad([w, b], torch.arange(6.0))
        >>> w.grad, b.grad
        (tensor([[0., 1.],
                [2., 3.]]), tensor([4., 5.]))
    """
    param_list = check_params(params, single=False)
    if not isinstance(flat_grad, Tensor) or not flat_grad.is_floating_point():
        raise TypeError(
            f"`flat_grad` must be a 1-D floating-point tensor, got {describe(flat_grad)}"
        )
    if flat_grad.dim() != 1:
        raise ValueError(f"`flat_grad` must be a 1-D tensor, got shape {tuple(flat_grad.shape)}")
    if not isinstance(accumulate, bool):
        raise TypeError(f"`accumulate` must be a bool, got {describe(accumulate)}")
    total = sum(p.numel() for p in param_list)
    if flat_grad.numel() != total:
        raise ValueError(
            f"`flat_grad` has {flat_grad.numel()} entries but the parameters have {total}"
        )
    if flat_grad.device != param_list[0].device:
        raise ValueError(
            f"`flat_grad` is on {flat_grad.device} but the parameters are on {param_list[0].device}"
        )
    for i, p in enumerate(param_list):
        if not (p.is_floating_point() or p.is_complex()):
            raise TypeError(
                f"`params[{i}]` must be a floating-point tensor to hold a gradient, got {p.dtype}"
            )
    values = flat_grad.detach()
    offset = 0
    for p in param_list:
        chunk = values[offset : offset + p.numel()].view_as(p).to(p.dtype)
        if accumulate and p.grad is not None:
            p.grad = p.grad.detach() + chunk
        else:
            p.grad = chunk.clone()
        offset += p.numel()


def _reachable(root: torch.autograd.graph.Node) -> tuple[set[int], list[object]]:
    """ids of the leaves (via AccumulateGrad) and of the nodes reachable from ``root``.

    Also returns the visited nodes, kept alive so that their ids stay valid while
    the caller compares them with the ``grad_fn`` of non-leaf tensors.
    """
    seen: set[int] = set()
    nodes: list[object] = []
    leaves: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(node)
        variable = getattr(node, "variable", None)
        if variable is not None:
            leaves.add(id(variable))
        stack.extend(next_node for next_node, _ in node.next_functions if next_node is not None)
    return leaves | seen, nodes


def _reachable_leaves(root: torch.autograd.graph.Node) -> set[int]:
    """ids of the leaf tensors whose AccumulateGrad node is reachable from ``root``."""
    leaves: set[int] = set()
    for node in _reachable(root)[1]:
        variable = getattr(node, "variable", None)
        if variable is not None:
            leaves.add(id(variable))
    return leaves


def assert_connected(
    loss: Tensor, params: Iterable[Tensor] | Mapping[str, Tensor] | nn.Module
) -> None:
    r"""Check that ``loss`` has a graph and that every parameter can receive a gradient from it.

    Two silent failures are caught before any training step is wasted:

    - the loss has no graph at all: it was built with ``torch.tensor([...])``,
      ``.item()``, ``.detach()`` or under ``torch.no_grad()``, so ``backward()``
      fails or (when added to a connected loss) contributes nothing;
    - some parameters are not reached: a head that is never used, a detached
      branch, a term computed from copied values.

    The check walks the autograd graph; it computes no gradient.

    Args:
        loss: a scalar loss.
        params: the parameters that should be trained by it: a module, an
            iterable of tensors, or ``dict(model.named_parameters())`` so that
            the message names them.

    Raises:
        ValueError: naming the problem and the parameters that are not reached.

    Example:
        >>> net = torch.nn.Linear(2, 1)
        >>> assert_connected(net(torch.ones(1, 2)).sum(), net)
        >>> cut = torch.tensor([float(p.detach().sum()) for p in net.parameters()]).sum()
        >>> assert_connected(cut, net)
        Traceback (most recent call last):
        ...
        ValueError: `loss` has no graph (requires_grad=False), so no parameter can get ...
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"`loss` must be a tensor, got {describe(loss)}")
    if loss.numel() != 1:
        raise ValueError(f"`loss` must be a scalar, got shape {tuple(loss.shape)}")
    if loss.is_complex():  # an integer loss gets the no-graph message below
        check_real_floating(loss, "`loss`")
    named: dict[str, Tensor]
    if isinstance(params, nn.Module):
        named = dict(params.named_parameters())
    elif isinstance(params, Mapping):
        named = dict(params)
    elif isinstance(params, Tensor):
        named = {"params": params}
    elif isinstance(params, Iterable) and not isinstance(params, (str, bytes)):
        named = {f"params[{i}]": p for i, p in enumerate(params)}
    else:
        raise TypeError(
            "`params` must be a module, a mapping or an iterable of tensors, "
            f"got {describe(params)}"
        )
    if not named:
        raise ValueError("`params` is empty")
    for name, p in named.items():
        if not isinstance(p, Tensor):
            raise TypeError(f"parameter {name!r} must be a tensor, got {describe(p)}")
    if loss.grad_fn is None:
        if loss.requires_grad and any(loss is p for p in named.values()):
            return
        raise ValueError(
            "`loss` has no graph (requires_grad=False), so no parameter can get a gradient "
            "from it. It was probably built from copied values: torch.tensor([...]) of "
            "losses, .item(), .detach() or torch.no_grad(). Combine losses with + or "
            "torch.stack([...]).sum() to keep the graph."
        )
    reached, _alive = _reachable(loss.grad_fn)
    missing = [
        name
        for name, p in named.items()
        if id(p) not in reached and (p.grad_fn is None or id(p.grad_fn) not in reached)
    ]
    frozen = [name for name, p in named.items() if not p.requires_grad]
    # a non-leaf tensor (e.g. shared features) is reached when its grad_fn is in the graph
    if frozen:
        raise ValueError(f"parameters {frozen} have requires_grad=False and cannot be trained")
    if missing:
        raise ValueError(
            f"`loss` does not reach {len(missing)} of {len(named)} parameters: {missing}. "
            "They will get no gradient from it (unused head, detached branch, or values "
            "copied out of the graph)."
        )
