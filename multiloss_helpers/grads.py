"""Per-loss gradients, gradient conflict, and a check that a loss can train anything."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ._validation import describe

__all__ = ["assert_connected", "grad_cosine", "per_loss_grads"]


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
        if not loss.requires_grad:
            raise ValueError(
                f"`losses[{i}]` does not require grad: it has no graph to differentiate "
                "(was it built with torch.tensor(...), .item() or under torch.no_grad()?)"
            )
    return [loss.reshape(()) for loss in items]


def _as_param_list(params: Iterable[Tensor] | Tensor | nn.Module) -> list[Tensor]:
    if isinstance(params, nn.Module):
        params = list(params.parameters())
    elif isinstance(params, Tensor):
        params = [params]
    elif isinstance(params, Mapping):
        params = list(params.values())
    elif isinstance(params, Iterable) and not isinstance(params, (str, bytes)):
        params = list(params)
    else:
        raise TypeError(
            f"`params` must be a tensor, a module or an iterable of tensors, got {describe(params)}"
        )
    if not params:
        raise ValueError("`params` is empty")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"`params[{i}]` must be a tensor, got {describe(p)}")
        if not p.requires_grad:
            raise ValueError(f"`params[{i}]` does not require grad, so it has no gradient")
    return params


def per_loss_grads(
    losses: Sequence[Tensor] | Tensor,
    params: Iterable[Tensor] | Tensor | nn.Module,
    *,
    retain_graph: bool = False,
) -> Tensor:
    """The gradient of each loss with respect to the same parameters, one row per loss.

    .. math::

        G = \\begin{bmatrix} \\nabla_\\theta L_1 \\\\ \\vdots \\\\ \\nabla_\\theta L_T \\end{bmatrix}
        \\in \\mathbb{R}^{T \\times P},
        \\qquad \\textstyle\\sum_i G_i = \\nabla_\\theta \\sum_i L_i

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
            ``backward()`` afterwards.

    Returns:
        A ``(T, P)`` tensor, ``P`` the total number of elements in ``params``,
        with the parameters' dtype and device.

    Example:
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> g = per_loss_grads([(w ** 2).sum(), 3 * w[0]], [w])
        >>> g
        tensor([[2., 4.],
                [3., 0.]])
    """
    loss_list = _as_loss_list(losses)
    param_list = _as_param_list(params)
    if not isinstance(retain_graph, bool):
        raise TypeError(f"`retain_graph` must be a bool, got {describe(retain_graph)}")
    sizes = [p.numel() for p in param_list]
    first = param_list[0]
    out = torch.empty(len(loss_list), sum(sizes), dtype=first.dtype, device=first.device)
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


def grad_cosine(grads: Tensor, *, eps: float = 1e-12) -> Tensor:
    """Cosine similarity between every pair of per-loss gradients.

    .. math::

        C_{ij} = \\frac{g_i \\cdot g_j}{\\lVert g_i \\rVert \\, \\lVert g_j \\rVert}

    A negative entry means that a step along one task's gradient increases the
    other task's loss to first order: the two tasks *conflict* (Yu et al. 2020,
    "Gradient Surgery for Multi-Task Learning",
    `arXiv:2001.06782 <https://arxiv.org/abs/2001.06782>`_). A zero gradient has
    cosine 0 with everything (and 1 with itself).

    Args:
        grads: a ``(T, P)`` matrix of per-loss gradients, e.g. from :func:`per_loss_grads`.
        eps: added to norms to avoid division by zero.

    Returns:
        A symmetric ``(T, T)`` matrix with entries in ``[-1, 1]``.

    Example:
        >>> grad_cosine(torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]))
        tensor([[ 1.,  0., -1.],
                [ 0.,  1.,  0.],
                [-1.,  0.,  1.]])
    """
    if not isinstance(grads, Tensor):
        raise TypeError(f"`grads` must be a (T, P) tensor, got {describe(grads)}")
    if grads.dim() != 2 or grads.shape[0] == 0:
        raise ValueError(f"`grads` must have shape (T, P) with T >= 1, got {tuple(grads.shape)}")
    if not grads.is_floating_point():
        raise TypeError(f"`grads` must be a floating-point tensor, got {grads.dtype}")
    norms = grads.norm(dim=1, keepdim=True)
    unit = grads / (norms + eps)
    cosine = (unit @ unit.T).clamp(-1.0, 1.0)
    cosine.diagonal().fill_(1.0)
    return cosine


def _reachable_leaves(root: torch.autograd.graph.Node) -> set[int]:
    """ids of the leaf tensors whose AccumulateGrad node is reachable from ``root``."""
    seen: set[int] = set()
    leaves: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if variable is not None:
            leaves.add(id(variable))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return leaves


def assert_connected(
    loss: Tensor, params: Iterable[Tensor] | Mapping[str, Tensor] | nn.Module
) -> None:
    """Check that ``loss`` has a graph and that every parameter can receive a gradient from it.

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
        ValueError: `loss` has no graph (requires_grad=False), so no parameter can get a gradient from it. ...
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"`loss` must be a tensor, got {describe(loss)}")
    if loss.numel() != 1:
        raise ValueError(f"`loss` must be a scalar, got shape {tuple(loss.shape)}")
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
            f"`params` must be a module, a mapping or an iterable of tensors, got {describe(params)}"
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
    reached = _reachable_leaves(loss.grad_fn)
    missing = [name for name, p in named.items() if id(p) not in reached]
    frozen = [name for name, p in named.items() if not p.requires_grad]
    if frozen:
        raise ValueError(f"parameters {frozen} have requires_grad=False and cannot be trained")
    if missing:
        raise ValueError(
            f"`loss` does not reach {len(missing)} of {len(named)} parameters: {missing}. "
            "They will get no gradient from it (unused head, detached branch, or values "
            "copied out of the graph)."
        )
