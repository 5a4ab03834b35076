r"""Constraints instead of weights: Lagrange multipliers found by projected gradient ascent.

Instead of a weight for a second loss, choose a level it must stay under,
:math:`c_i(\theta) \le b_i`, and let a multiplier :math:`\lambda_i \ge 0` find the weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ._validation import check_float, describe
from .weighting._base import check_losses, check_task_vector

__all__ = ["Constraints"]


class Constraints(nn.Module):
    r"""Minimise an objective under inequality constraints, driven like a weighting strategy.

    The problem :math:`\min_\theta f(\theta)` subject to
    :math:`c_i(\theta) \le b_i` (:math:`i = 1, \dots, m`) has the Lagrangian

    .. math::

        \mathcal{L}(\theta, \lambda) = f(\theta) + \sum_i \lambda_i\, g_i(\theta),
        \qquad g_i = c_i - b_i, \quad \lambda_i \ge 0,

    minimised over :math:`\theta` and maximised over :math:`\lambda`. Each call of
    :meth:`backward` does one step of each: it backpropagates
    :math:`f + \sum_i \hat\lambda_i c_i` into the model's ``.grad`` (the model's
    optimiser then descends), and moves every multiplier up its gradient
    :math:`g_i` and back to the feasible set,

    .. math::

        \lambda_i \leftarrow \max\bigl(0,\ \lambda_i + \eta\, g_i\bigr),

    which is chapter 7's ascent (``maximize=True``) followed by a clamp at zero. A
    violated constraint (:math:`g_i > 0`) raises its multiplier, a satisfied one lowers
    it down to 0, where an inactive constraint stays. The multipliers are a buffer, not
    parameters: an optimiser that *minimises* must never hold them (that is the sign
    error that drives :math:`\lambda` to :math:`-\infty`).

    Plain descent-ascent circles around the saddle point: :math:`\theta` overshoots the
    boundary, :math:`\lambda` lags. ``damping`` :math:`c > 0` adds the damping term of
    Platt & Barr's modified differential method of multipliers, in its form for
    inequalities (the augmented Lagrangian of Rockafellar 1973): the step's
    multiplier is

    .. math::

        \hat\lambda_i = \max\bigl(0,\ \lambda_i + c\, g_i\bigr)

    so a violation pushes back at once, in proportion to its size, without waiting for
    :math:`\lambda_i` to grow. At a solution :math:`g_i = 0` for an active constraint and
    :math:`\hat\lambda_i = \lambda_i`: the damping changes the path, not the optimum.
    With ``damping=0`` the step uses :math:`\lambda_i` itself.

    Protocol: ``num_tasks`` is :math:`1 + m` and :meth:`backward` takes the stacked
    ``(objective, c_1, ..., c_m)``, so ``mlh.fit(..., weighting=constraints)`` drives it
    with a ``loss_fn`` whose components are the objective first, then the constrained
    quantities, and logs :math:`(1, \hat\lambda_1, \dots, \hat\lambda_m)` as
    ``weight/<component>`` (multipliers, not rescaled to sum to :math:`T` as a weighting
    strategy's weights are). A "greater than" constraint, e.g. recall
    :math:`\ge 0.9`, is :math:`-\text{recall} \le -0.9`. The multipliers see the
    values of a batch: with noisy estimates use a small ``lr``.

    Args:
        bounds: the levels :math:`b_i`, one per constraint (a sequence of floats or a
            1-D tensor). The bounds and the multipliers are kept in float32, or in
            float64 when ``bounds`` is a float64 tensor.
        lr: the ascent step :math:`\eta > 0` of the multipliers. Default: ``0.01``.
        damping: :math:`c \ge 0`. Default: ``0.0``.
        init: the starting multipliers, :math:`\ge 0` (one float for all).
            Default: ``0.0``.

    Example:
        >>> theta = torch.tensor([0.0, 0.0], requires_grad=True)
        >>> constraints = Constraints([2.0], lr=0.5)  # theta_1 + theta_2 <= 2
        >>> optimizer = torch.optim.SGD([theta], lr=0.1)
        >>> for _ in range(500):
        ...     optimizer.zero_grad()
        ...     objective = ((theta - 2.0) ** 2).sum()
        ...     weights = constraints.backward(torch.stack([objective, theta.sum()]))
        ...     optimizer.step()
        >>> theta.detach().round(decimals=3), constraints.multipliers.round(decimals=3)
        (tensor([1., 1.]), tensor([2.]))

    Papers: Platt & Barr 1988, "Constrained Differential Optimization", NeurIPS
    (`proceedings <https://proceedings.neurips.cc/paper/1987/hash/a87ff679a2f3e71d9181a67b7542122c-Abstract.html>`_);
    Rockafellar 1973, "A dual approach to solving nonlinear programming problems by
    unconstrained optimization", Mathematical Programming 5, 354-373.
    """

    multipliers: Tensor
    bounds: Tensor

    def __init__(
        self,
        bounds: Sequence[float] | Tensor,
        *,
        lr: float = 0.01,
        damping: float = 0.0,
        init: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(bounds, Tensor):
            # float64 bounds stay float64 (a float32 copy of 0.3 is 1.2e-8 off)
            dtype = torch.float64 if bounds.dtype == torch.float64 else torch.float32
            values = bounds.detach().to(dtype)
        elif isinstance(bounds, Sequence) and not isinstance(bounds, str):
            values = torch.tensor(
                [check_float(b, f"bounds[{i}]") for i, b in enumerate(bounds)], dtype=torch.float32
            )
        else:
            raise TypeError(
                f"`bounds` must be a sequence of floats or a 1-D tensor, got {describe(bounds)}"
            )
        if values.dim() != 1 or values.numel() == 0:
            raise ValueError(
                f"`bounds` must hold one level per constraint (at least one), "
                f"got shape {tuple(values.shape)}"
            )
        check_task_vector(values, "bounds", values.numel())
        self.lr = check_float(lr, "lr", minimum=0.0, open_minimum=True)
        self.damping = check_float(damping, "damping", minimum=0.0)
        init = check_float(init, "init", minimum=0.0)
        self.num_tasks = 1 + values.numel()
        self.register_buffer("bounds", values)
        self.register_buffer("multipliers", torch.full_like(values, init))

    @property
    def weights(self) -> Tensor:
        r"""``(1, \lambda_1, ..., \lambda_m)``: the current multipliers (detached)."""
        return torch.cat([torch.ones(1, dtype=self.multipliers.dtype), self.multipliers.cpu()])

    def backward(self, losses: Tensor) -> Tensor:
        r"""One descent step's gradient for the model, one ascent step for the multipliers.

        Args:
            losses: ``(objective, c_1, ..., c_m)``, stacked, with their graph.

        Returns:
            The weights applied, ``(1, \hat\lambda_1, ..., \hat\lambda_m)``, detached, in
            the losses' dtype and on their device.
        """
        losses = check_losses(losses, self.num_tasks)
        # float32 inside for half losses; the weights go back in the losses' dtype
        dtype = torch.float64 if losses.dtype == torch.float64 else torch.float32
        values = losses.detach()[1:].to(dtype)
        multipliers = self.multipliers.to(device=values.device, dtype=dtype)
        violation = values - self.bounds.to(device=values.device, dtype=dtype)
        step = multipliers
        if self.damping > 0:
            step = (multipliers + self.damping * violation).clamp_min(0)
        weights = torch.cat([torch.ones_like(step[:1]), step]).to(losses.dtype)
        (weights * losses).sum().backward()
        updated = (multipliers + self.lr * violation).clamp_min(0)
        self.multipliers.copy_(updated)
        return weights

    def epoch_end(self, epoch_losses: Tensor) -> None:
        """Receive the epoch's mean per component (the protocol's hook); a no-op here."""
        check_task_vector(epoch_losses, "epoch_losses", self.num_tasks, finite=False)

    def extra_repr(self) -> str:
        return (
            f"bounds={self.bounds.tolist()}, lr={self.lr}, damping={self.damping}, "
            f"multipliers={self.multipliers.tolist()}"
        )
