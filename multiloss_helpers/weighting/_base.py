r"""The protocol every task-weighting strategy implements, and the checks they share.

A strategy is a :class:`Weighting`: an ``nn.Module`` that knows the number of tasks
:math:`T` and is driven from a training step by one call,

.. code-block:: python

    optimizer.zero_grad()
    losses = torch.stack([loss_a, loss_b])  # the task losses, in task order
    weights = weighting.backward(losses)  # leaves the gradients in .grad
    optimizer.step()

and, once per epoch, by ``weighting.epoch_end(epoch_mean_losses)``. ``weights`` has
one meaning for every strategy: the multiplier that each task's loss gets in the
step, rescaled to sum to :math:`T` (equal weighting is all ones).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_float, check_int, check_params, check_real_floating, describe
from ..grads import assign_grad, flat_grad

__all__ = ["EqualWeighting", "FixedWeighting", "Weighting"]


def check_num_tasks(num_tasks: Any) -> int:
    """``num_tasks`` as an int of at least 1."""
    return check_int(num_tasks, "num_tasks", minimum=1)


def check_task_vector(values: Any, name: str, num_tasks: int, *, finite: bool = True) -> Tensor:
    """A 1-D floating-point tensor with one entry per task.

    The finiteness check needs the values on the host, so it runs for CPU tensors
    only: on an accelerator it would stall every training step.
    """
    if not isinstance(values, Tensor):
        raise TypeError(
            f"`{name}` must be a tensor with one entry per task, got {describe(values)}"
        )
    if values.shape != (num_tasks,):
        raise ValueError(
            f"`{name}` must have shape ({num_tasks},), one entry per task, "
            f"got {tuple(values.shape)}"
        )
    if not values.is_floating_point():
        raise TypeError(f"`{name}` must be floating point, got {values.dtype}")
    if finite and values.device.type == "cpu" and not bool(torch.isfinite(values).all()):
        raise ValueError(f"`{name}` must be finite, got {values.detach().tolist()}")
    return values


def check_losses(losses: Any, num_tasks: int) -> Tensor:
    """The ``(T,)`` task losses handed to :meth:`Weighting.backward`, with a graph."""
    check_task_vector(losses, "losses", num_tasks)
    if not losses.requires_grad:
        raise ValueError(
            "`losses` has no graph (requires_grad=False): stack the task losses with "
            "torch.stack([...]) rather than torch.tensor([...]) or .item()"
        )
    return losses


def rescale_to_num_tasks(multipliers: Tensor) -> Tensor:
    """Multipliers rescaled to sum to ``T``: the one meaning of ``weights``.

    Divided by their largest entry first, so that neither the sum (multipliers
    near the dtype's maximum) nor its reciprocal (near its smallest) overflows.
    """
    multipliers = multipliers / multipliers.amax().clamp_min(torch.finfo(multipliers.dtype).tiny)
    return multipliers * (multipliers.shape[0] / multipliers.sum())


class Weighting(nn.Module):
    r"""The protocol of a task-weighting strategy.

    A training step hands the task losses, stacked in task order, to
    :meth:`backward`, which computes the strategy's update and leaves the
    gradients in ``.grad`` (accumulating, as ``Tensor.backward()`` does) of every
    parameter the losses reach and of the strategy's own learnable parameters, so
    that an optimiser holding them steps them. Once per epoch, :meth:`epoch_end`
    receives the epoch's mean loss per task. The default :meth:`backward`
    backpropagates

    .. math::

        \sum_{i=1}^{T} w_i L_i

    with :math:`w` = :attr:`weights`. A strategy that changes gradients rather than
    loss weights (PCGrad, MGDA) takes the shared parameters in its constructor,
    operates on their per-task gradients only, and gives every other parameter
    the plain gradient of the weighted sum, as LibMTL does.

    **What ``weights`` means, for every strategy**: the multiplier that each task's
    loss gets in the step, rescaled to sum to :math:`T`. Equal weighting is all
    ones; a weight of 2 means twice the average multiplier.

    To add a strategy: subclass :class:`Weighting` in its own module under
    ``multiloss_helpers/weighting/``, then add the class to ``STRATEGIES`` in
    ``multiloss_helpers/weighting/__init__.py``; the shared property tests then run
    on it, and a test fails for a subclass that is not registered.

    Args:
        num_tasks: :math:`T`, the number of task losses.

    Example:
        >>> weighting = EqualWeighting(num_tasks=2)
        >>> w = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> weighting.backward(torch.stack([w[0] ** 2, 3 * w[1]]))
        tensor([1., 1.])
        >>> w.grad
        tensor([2., 3.])
    """

    num_tasks: int

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = check_num_tasks(num_tasks)

    @property
    def weights(self) -> Tensor:
        """The current weights, shape ``(T,)``, summing to :math:`T` (detached)."""
        raise NotImplementedError(f"{type(self).__name__} must define `weights`")

    def backward(self, losses: Tensor) -> Tensor:
        """Backpropagate the strategy's combination of ``losses``; return the weights used.

        Args:
            losses: the ``(T,)`` task losses in task order, with their graph.

        Returns:
            The weights applied in this step (detached), shape ``(T,)``, in the
            losses' dtype and on their device.
        """
        losses = check_losses(losses, self.num_tasks)
        weights = self.step_weights(losses)
        (weights * losses).sum().backward()
        return weights

    def step_weights(self, losses: Tensor) -> Tensor:
        """The weights ``backward`` applies, on the losses' device and in their dtype.

        Override it to build them there directly: a copy from the host at every
        step would make an accelerator wait.
        """
        return self.weights.to(device=losses.device, dtype=losses.dtype)

    def epoch_end(self, epoch_losses: Tensor) -> None:
        """Receive the epoch's mean loss per task, shape ``(T,)`` (detached); a no-op here."""
        check_task_vector(epoch_losses, "epoch_losses", self.num_tasks, finite=False)

    def extra_repr(self) -> str:
        return f"num_tasks={self.num_tasks}"


class EqualWeighting(Weighting):
    r"""Every task's loss with weight 1: the plain sum :math:`\sum_i L_i`.

    The baseline every other strategy is compared with, driven through the same
    protocol.

    Args:
        num_tasks: :math:`T`.

    Example:
        >>> EqualWeighting(num_tasks=3)
        EqualWeighting(num_tasks=3)
        >>> EqualWeighting(3).weights
        tensor([1., 1., 1.])
    """

    @property
    def weights(self) -> Tensor:
        """All ones, shape ``(T,)``."""
        return torch.ones(self.num_tasks)

    def step_weights(self, losses: Tensor) -> Tensor:
        return torch.ones(self.num_tasks, device=losses.device, dtype=losses.dtype)


class FixedWeighting(Weighting):
    r"""Fixed multipliers :math:`\sum_i c_i L_i`, e.g. weights tuned by hand or by a sweep.

    The step uses ``multipliers`` as given; :attr:`weights` reports them rescaled
    to sum to :math:`T`, as for every strategy.

    Args:
        multipliers: ``(T,)`` finite, non-negative multipliers with a positive sum
            (a tensor or a sequence of floats); :math:`T` is its length.

    Example:
        >>> fixed = FixedWeighting([1.0, 3.0])
        >>> fixed
        FixedWeighting(multipliers=[1.0, 3.0])
        >>> fixed.weights
        tensor([0.5000, 1.5000])
    """

    multipliers: Tensor

    def __init__(self, multipliers: Tensor | Iterable[float]) -> None:
        if not isinstance(multipliers, Tensor):
            if isinstance(multipliers, (str, bytes)) or not isinstance(multipliers, Iterable):
                raise TypeError(
                    "`multipliers` must be a tensor or a sequence of floats, "
                    f"got {describe(multipliers)}"
                )
            items = list(multipliers)
            multipliers = torch.tensor(
                [check_float(m, f"multipliers[{i}]") for i, m in enumerate(items)]
            )
        if multipliers.dim() != 1 or len(multipliers) == 0:
            raise ValueError(
                f"`multipliers` must be 1-D with one entry per task, got shape "
                f"{tuple(multipliers.shape)}"
            )
        if multipliers.is_complex():
            raise TypeError(f"`multipliers` must be real, got {multipliers.dtype}")
        if not multipliers.is_floating_point() and multipliers.dtype != torch.bool:
            multipliers = multipliers.float()  # integer multipliers such as [1, 3]
        super().__init__(len(multipliers))
        values = check_task_vector(multipliers.detach().cpu(), "multipliers", self.num_tasks)
        if bool((values < 0).any()) or not bool(values.sum() > 0):
            raise ValueError(
                f"`multipliers` must be non-negative with a positive sum, got {values.tolist()}"
            )
        dtype = torch.promote_types(multipliers.dtype, torch.float32)
        self.register_buffer("multipliers", multipliers.detach().to(dtype, copy=True))

    @property
    def weights(self) -> Tensor:
        """The multipliers rescaled to sum to :math:`T`."""
        return rescale_to_num_tasks(self.multipliers)

    def backward(self, losses: Tensor) -> Tensor:
        losses = check_losses(losses, self.num_tasks)
        if self.multipliers.device != losses.device:  # once, not a copy per step
            self.multipliers = self.multipliers.to(losses.device)
        compute = torch.promote_types(losses.dtype, torch.float32)  # half: float32 inside
        multipliers = self.multipliers.to(compute)
        (multipliers * losses.to(compute)).sum().backward()
        return rescale_to_num_tasks(multipliers).to(losses.dtype)

    def extra_repr(self) -> str:
        return f"multipliers={self.multipliers.tolist()}"


def check_shared(shared: Any) -> list[Tensor]:
    """The shared parameters: an iterable of tensors that require grad, each once.

    A tensor listed twice would receive the combined gradient twice.
    """
    params = check_params(shared, "shared", single=False, requires_grad=True)
    seen: dict[int, int] = {}
    for i, p in enumerate(params):
        if id(p) in seen:
            raise ValueError(
                f"`shared[{i}]` is `shared[{seen[id(p)]}]` again: list each parameter once "
                "(model.parameters() does), or it receives the combined gradient twice"
            )
        seen[id(p)] = i
        check_real_floating(p, f"`shared[{i}]`")
    return params


def backward_with_shared(
    losses: Tensor, shared: list[Tensor], combine: Callable[[Tensor], Tensor]
) -> None:
    r"""Surgery on the shared parameters, the plain sum's gradient everywhere else.

    One backward pass per task (as LibMTL does): every parameter accumulates
    the gradient of :math:`\sum_i L_i`, except ``shared``, whose per-task
    gradients are collected as the rows of a ``(T, P)`` matrix and replaced by
    ``combine(rows)``, added to their ``.grad``.
    """
    saved = [p.grad for p in shared]
    reached = [False] * len(shared)
    rows = []
    last = len(losses) - 1
    for i, loss in enumerate(losses.unbind()):
        for p in shared:
            p.grad = None
        loss.backward(retain_graph=i < last)
        reached = [hit or p.grad is not None for hit, p in zip(reached, shared)]
        rows.append(flat_grad(shared))
    direction = combine(torch.stack(rows))
    for p, grad in zip(shared, saved):
        p.grad = grad
    assign_grad(shared, direction, accumulate=True)
    for p, grad, hit in zip(shared, saved, reached):
        # frozen after construction, or reached by no loss: no zero .grad for Adam(W) to
        # step or decay; the parameter keeps what it had, as after a plain backward()
        if not p.requires_grad or not hit:
            p.grad = grad
