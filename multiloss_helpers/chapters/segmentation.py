r"""Chapter 17's set-up: many tiny segmentation nets trained at once, and two scores.

Chapter 17 compares losses (cross-entropy, Dice, their sum, class weights, focal loss)
over several seeds. Training one small fully convolutional net per loss and seed, one
after the other, costs a minute on a laptop CPU; :class:`SegmentationNets` holds them
all as one module whose parameters carry a leading (seed, loss) index, so one forward
and one backward pass train every net, each on its own seed's images and with its own
loss. The nets share no parameter: the gradient of net ``(g, k)``'s loss reaches only
net ``(g, k)``'s weights, and Adam's update is elementwise, so each net trains exactly
as it would alone (the tests compare one of them with ``nn.Conv2d`` layers).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_int, check_seed, describe

__all__ = ["SegmentationNets", "expected_calibration_error", "overlap_dice"]


class SegmentationNets(nn.Module):
    r"""``n_groups * n_per_group`` independent tiny fully convolutional nets, as one module.

    Each net is ``Conv2d(1, width, kernel_size, padding=kernel_size // 2)``, ReLU,
    ``Conv2d(width, width, 1)``, ReLU, ``Conv2d(width, n_classes, 1)``: one spatial layer
    that sees a ``kernel_size`` square around each pixel, then a small per-pixel network,
    with PyTorch's default initialisation (uniform in :math:`\pm 1 / \sqrt{\text{fan in}}`).
    The nets of group ``g`` (a seed, in chapter 17) all read the images of input group
    ``g``; net ``k`` of a group is trained with loss ``k``.

    Args:
        n_groups: groups of inputs ``G`` (e.g. seeds).
        n_per_group: nets per group ``K`` (e.g. losses).
        n_classes: output classes ``C``. Default: ``4``.
        width: channels of the hidden layers. Default: ``8``.
        kernel_size: odd side of the spatial layer's kernel. Default: ``5``.
        seed: seed of the initialisation (the global generator is untouched).
            Default: ``0``.

    Shape:
        - Input: ``(G, N, 1, H, W)``.
        - Output: ``(G, N, K, C, H, W)``; ``[:, :, k]`` are net ``k``'s logits.

    Example:
        >>> nets = SegmentationNets(2, 3, seed=0)
        >>> tuple(nets(torch.zeros(2, 5, 1, 16, 16)).shape)
        (2, 5, 3, 4, 16, 16)
    """

    def __init__(
        self,
        n_groups: int,
        n_per_group: int,
        *,
        n_classes: int = 4,
        width: int = 8,
        kernel_size: int = 5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        g = check_int(n_groups, "n_groups", minimum=1)
        k = check_int(n_per_group, "n_per_group", minimum=1)
        c = check_int(n_classes, "n_classes", minimum=2)
        w = check_int(width, "width", minimum=1)
        size = check_int(kernel_size, "kernel_size", minimum=1)
        if size % 2 == 0:
            raise ValueError(f"`kernel_size` must be odd, got {size}")
        gen = torch.Generator().manual_seed(check_seed(seed, "seed"))
        self.n_groups, self.n_per_group, self.n_classes = g, k, c
        self.width, self.kernel_size, self.seed = w, size, seed

        def uniform(*shape: int, fan_in: int) -> nn.Parameter:
            bound = 1 / math.sqrt(fan_in)
            return nn.Parameter((2 * torch.rand(*shape, generator=gen) - 1) * bound)

        area = size * size
        self.weight1 = uniform(g, 1, k * w, area, fan_in=area)  # (G, 1, K*W, k*k)
        self.bias1 = uniform(g, 1, k * w, 1, fan_in=area)
        self.weight2 = uniform(g, 1, k, w, w, fan_in=w)
        self.bias2 = uniform(g, 1, k, w, 1, fan_in=w)
        self.weight3 = uniform(g, 1, k, c, w, fan_in=w)
        self.bias3 = uniform(g, 1, k, c, 1, fan_in=w)

    def forward(self, x: Tensor) -> Tensor:
        r"""The logits of every net, ``(G, N, K, C, H, W)``, for images ``(G, N, 1, H, W)``."""
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"`x` must be a floating-point tensor, got {describe(x)}")
        if x.dim() != 5 or x.shape[0] != self.n_groups or x.shape[2] != 1:
            raise ValueError(
                f"`x` must have shape ({self.n_groups}, N, 1, H, W), got {tuple(x.shape)}"
            )
        g, n, _, height, width = x.shape
        size = self.kernel_size
        patches = F.unfold(x.reshape(g * n, 1, height, width), size, padding=size // 2)
        patches = patches.view(g, n, size * size, height * width)
        h = torch.matmul(self.weight1, patches).add_(self.bias1).relu_()
        h = h.view(g, n, self.n_per_group, self.width, height * width)
        h = torch.matmul(self.weight2, h).add_(self.bias2).relu_()
        out = torch.matmul(self.weight3, h).add_(self.bias3)
        return out.view(g, n, self.n_per_group, self.n_classes, height, width)

    def net(self, group: int, index: int) -> nn.Sequential:
        r"""A copy of net ``(group, index)`` as ``nn.Conv2d`` layers (for checking)."""
        g = check_int(group, "group", minimum=0)
        k = check_int(index, "index", minimum=0)
        if g >= self.n_groups or k >= self.n_per_group:
            raise ValueError(
                f"net ({g}, {k}) does not exist: there are {self.n_groups} groups of "
                f"{self.n_per_group} nets"
            )
        w, c, size = self.width, self.n_classes, self.kernel_size
        first = nn.Conv2d(1, w, size, padding=size // 2)
        second, last = nn.Conv2d(w, w, 1), nn.Conv2d(w, c, 1)
        rows = slice(k * w, (k + 1) * w)
        values = (
            (first, self.weight1[g, 0, rows].view(w, 1, size, size), self.bias1[g, 0, rows, 0]),
            (second, self.weight2[g, 0, k].view(w, w, 1, 1), self.bias2[g, 0, k, :, 0]),
            (last, self.weight3[g, 0, k].view(c, w, 1, 1), self.bias3[g, 0, k, :, 0]),
        )
        for conv, weight, bias in values:
            conv.weight = nn.Parameter(weight.detach().clone())
            conv.bias = nn.Parameter(bias.detach().clone())
        layers = nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), last)
        return layers

    def extra_repr(self) -> str:
        return (
            f"n_groups={self.n_groups}, n_per_group={self.n_per_group}, "
            f"n_classes={self.n_classes}, width={self.width}, "
            f"kernel_size={self.kernel_size}, seed={self.seed}"
        )


def overlap_dice(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    r"""The hard Dice of each class over all pixels given: :math:`2|P \cap T| / (|P| + |T|)`.

    ``pred`` and ``target`` are class indices of the same shape (e.g. a validation set's
    argmax predictions and masks); the sums run over every pixel of every image. A class
    absent from both gets NaN (its Dice is undefined).

    Example:
        >>> overlap_dice(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 4)
        tensor([1.0000, 0.6667, 0.6667,    nan])
    """
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise TypeError(
            f"`pred` and `target` must be tensors, got {describe(pred)} and {describe(target)}"
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"`pred` and `target` must have the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    c = check_int(num_classes, "num_classes", minimum=1)
    classes = torch.arange(c, device=pred.device).view(c, *([1] * pred.dim()))
    p, t = pred.unsqueeze(0) == classes, target.unsqueeze(0) == classes
    both = (p & t).flatten(1).sum(1).double()
    total = (p.flatten(1).sum(1) + t.flatten(1).sum(1)).double()
    return (2 * both / total).float()


def expected_calibration_error(prob: Tensor, target: Tensor, *, n_bins: int = 10) -> Tensor:
    r"""Top-label expected calibration error over all pixels (Guo et al. 2017).

    Each pixel's confidence is its largest class probability; the pixels are put in
    ``n_bins`` equal-width confidence bins, and the error is
    :math:`\sum_b \frac{n_b}{n} |\text{accuracy}_b - \text{confidence}_b|`.

    Args:
        prob: probabilities, shape ``(N, C, d1, ...)``, summing to 1 over ``C``.
        target: class indices, shape ``(N, d1, ...)``.
        n_bins: number of bins. Default: ``10``.

    Example:
        >>> prob = torch.tensor([[[0.9, 0.6]], [[0.1, 0.4]]]).permute(1, 0, 2)  # (1, 2, 2)
        >>> expected_calibration_error(prob, torch.tensor([[0, 1]]))  # 0.5*0.1 + 0.5*0.6
        tensor(0.3500)
    """
    if not isinstance(prob, Tensor) or not isinstance(target, Tensor):
        raise TypeError(
            f"`prob` and `target` must be tensors, got {describe(prob)} and {describe(target)}"
        )
    if prob.dim() < 2 or (prob.shape[0], *prob.shape[2:]) != tuple(target.shape):
        raise ValueError(
            f"`prob` (N, C, ...) and `target` (N, ...) do not match: {tuple(prob.shape)} "
            f"and {tuple(target.shape)}"
        )
    bins = check_int(n_bins, "n_bins", minimum=1)
    confidence, label = prob.max(1)
    correct = (label == target).double().flatten()
    confidence = confidence.double().flatten()
    index = (confidence * bins).long().clamp_(0, bins - 1)
    count = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(correct))
    gap = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, confidence - correct)
    return (gap.abs().sum() / count.sum()).float()
