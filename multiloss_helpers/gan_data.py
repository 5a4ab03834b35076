r"""Seeded two-dimensional data for small generative adversarial networks."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._validation import check_float, check_generator, check_int

__all__ = ["make_ring_data", "ring_centres"]

_LARGEST = 1e30  # the samples are float32 (largest 3.4e38): larger scales overflow to inf


def ring_centres(modes: int = 8, *, radius: float = 2.0) -> Tensor:
    r"""The centres of ``modes`` points spaced evenly on a circle around the origin.

    .. math::
        c_k = r\,(\cos(2\pi k / K),\ \sin(2\pi k / K)), \qquad k = 0, \dots, K - 1

    Args:
        modes: the number of centres :math:`K` (at least 1). Default: ``8``.
        radius: the circle's radius :math:`r`, in :math:`(0, 10^{30}]`. Default: ``2.0``.

    Shape:
        Output: ``(modes, 2)``, float32.

    Example:
        >>> ring_centres(4, radius=1.0).round(decimals=3).tolist()
        [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-0.0, -1.0]]
    """
    modes = check_int(modes, "modes", minimum=1)
    radius = check_float(radius, "radius", minimum=0.0, maximum=_LARGEST, open_minimum=True)
    angles = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def make_ring_data(
    n: int = 1000,
    *,
    modes: int = 8,
    radius: float = 2.0,
    std: float = 0.05,
    seed: Any = 0,
) -> dict[str, Tensor]:
    r"""Samples from a ring of Gaussians: the classic toy target of a two-player GAN.

    Each sample is drawn around one of the ``modes`` centres of :func:`ring_centres`
    with isotropic Gaussian noise of standard deviation ``std``. The modes get equal
    shares of the samples (up to one), in random order. A generator that learns only
    some of the modes ("mode collapse") is easy to see and to measure on this data.

    .. math::
        x_i = c_{k_i} + \sigma\,\varepsilon_i, \qquad \varepsilon_i \sim \mathcal{N}(0, I_2)

    Args:
        n: the number of samples ``N`` (at least 1). Default: ``1000``.
        modes: the number of Gaussians on the ring (at least 1). Default: ``8``.
        radius: the ring's radius, in :math:`(0, 10^{30}]`. Default: ``2.0``.
        std: the standard deviation of each Gaussian, in :math:`[0, 10^{30}]`.
            Default: ``0.05``.
        seed: an ``int`` seed (>= 0) or a ``torch.Generator``. Default: ``0``.

    Returns:
        ``{"x": (N, 2) float32, "mode": (N,) int64}``: the samples and the index of the
        centre each one was drawn around.

    Example:
        >>> data = make_ring_data(800, seed=0)
        >>> data["x"].shape, torch.bincount(data["mode"]).tolist()
        (torch.Size([800, 2]), [100, 100, 100, 100, 100, 100, 100, 100])
        >>> bool((data["x"].norm(dim=1) - 2.0).abs().max() < 0.5)
        True

    The ring of eight Gaussians is the two-dimensional test of mode collapse used, for
    example, in Metz et al. 2016, "Unrolled Generative Adversarial Networks"
    (`arXiv:1611.02163 <https://arxiv.org/abs/1611.02163>`_).
    """
    n = check_int(n, "n", minimum=1)
    centres = ring_centres(modes, radius=radius)
    std = check_float(std, "std", minimum=0.0, maximum=_LARGEST)
    gen = check_generator(seed)
    mode = (torch.arange(n) % centres.shape[0])[torch.randperm(n, generator=gen)]
    x = centres[mode] + std * torch.randn(n, 2, generator=gen)
    return {"x": x, "mode": mode}
