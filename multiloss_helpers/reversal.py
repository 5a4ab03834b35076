r"""The gradient reversal layer: identity forward, negated (scaled) gradient backward."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ._validation import check_float, describe

__all__ = ["GradientReversal", "dann_scale", "grad_reverse"]


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        # a new tensor, not a view: an in-place op after it (ReLU(inplace=True)) is then
        # allowed, as after any layer; the copy costs one pass over the activations
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None]:
        return -ctx.scale * grad_output, None


def _check_scale(scale: Any) -> float:
    return check_float(scale, "scale", minimum=0.0)


def grad_reverse(x: Tensor, scale: float = 1.0) -> Tensor:
    r"""Identity in the forward pass; multiplies the gradient by ``-scale`` in the backward pass.

    .. math::

        R_\lambda(x) = x, \qquad \frac{\partial R_\lambda}{\partial x} = -\lambda I

    Placed between a feature extractor and a head, it lets the head *minimise*
    its loss while the layers below receive the gradient that *maximises* it:
    one backward pass trains both sides of a min-max game. This is the
    gradient reversal layer of domain-adversarial training (Ganin & Lempitsky
    2015, "Unsupervised Domain Adaptation by Backpropagation",
    `arXiv:1409.7495 <https://arxiv.org/abs/1409.7495>`_).

    ``torch.autograd.gradcheck`` rejects it by design, since the backward pass
    is deliberately not the derivative of the forward pass.

    Args:
        x: any tensor.
        scale: :math:`\lambda \ge 0`; 0 blocks the gradient, 1 negates it.
            :func:`dann_scale` gives the schedule of the paper. Default: ``1.0``.

    Returns:
        A copy of ``x`` (not a view, so an in-place activation may follow), connected
        to the graph through the reversal.

    Example:
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> grad_reverse(x, scale=0.5).sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000])
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"`x` must be a torch.Tensor, got {describe(x)}")
    return _GradReverse.apply(x, _check_scale(scale))


class GradientReversal(nn.Module):
    r"""Module form of :func:`grad_reverse`; ``scale`` can be changed during training.

    Args:
        scale: :math:`\lambda \ge 0`, the factor of the reversed gradient.
            Default: ``1.0``.

    Example:
        >>> layer = GradientReversal(scale=0.3)
        >>> layer
        GradientReversal(scale=0.3)
        >>> layer.scale = 1.0  # e.g. from dann_scale(progress)
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        self._scale = _check_scale(value)

    def forward(self, x: Tensor) -> Tensor:
        r"""Identity forward, ``-scale`` times the gradient backward."""
        return grad_reverse(x, self._scale)

    def extra_repr(self) -> str:
        return f"scale={self._scale!r}"


def dann_scale(progress: float, *, gamma: float = 10.0, final: float = 1.0) -> float:
    r"""The reversal-scale schedule of Ganin & Lempitsky (2015).

    .. math::

        \lambda(p) = \lambda_{\max} \left(\frac{2}{1 + e^{-\gamma p}} - 1\right)

    rises smoothly from 0 at the start of training (``p = 0``) to nearly
    :math:`\lambda_{\max}` at the end (``p = 1``), so the adversarial signal does
    not disturb the features while the domain classifier is still untrained.
    The paper uses :math:`\gamma = 10`.

    Args:
        progress: training progress :math:`p \in [0, 1]`.
        gamma: steepness :math:`\gamma > 0`. Default: ``10.0``.
        final: :math:`\lambda_{\max}`. Default: ``1.0``.

    Example:
        >>> [round(dann_scale(p), 3) for p in (0.0, 0.1, 0.5, 1.0)]
        [0.0, 0.462, 0.987, 1.0]
    """
    progress = check_float(progress, "progress", minimum=0.0, maximum=1.0)
    gamma = check_float(gamma, "gamma", minimum=0.0, open_minimum=True)
    final = check_float(final, "final", minimum=0.0)
    return final * (2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0)
