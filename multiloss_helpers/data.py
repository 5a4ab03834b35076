r"""Seeded synthetic datasets and a fast in-memory batch loader.

Every dataset in the book is made here from a seed: nothing is downloaded, and
the same seed gives the same tensors on every machine. Datasets are plain
dictionaries of tensors that share their first dimension, so they can be
sliced, split and batched without a ``Dataset`` class.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import Tensor

from ._validation import (
    check_bool,
    check_choice,
    check_float,
    check_generator,
    check_int,
    check_labels,
    check_tensor_dict,
    describe,
)

__all__ = [
    "BatchLoader",
    "make_domain_data",
    "make_imbalanced_data",
    "make_multitask_data",
    "make_segmentation_data",
    "train_val_split",
]


def make_multitask_data(
    n_samples: int = 1000,
    *,
    n_features: int = 8,
    n_classes: int = 3,
    noise: float = 0.1,
    label_noise: float = 0.0,
    seed: int | torch.Generator = 0,
) -> dict[str, Tensor]:
    r"""A regression target and a class target that share one hidden structure.

    The inputs ``x`` are standard normal. Both targets are functions of the same
    two-dimensional projection ``z = x @ W`` of the inputs, so a network whose
    shared trunk learns ``z`` is helped on both tasks:

    .. math::

        y_{\text{reg}} = \sin(2 z_1) + \tfrac{1}{2} z_2^2 + \sigma \varepsilon,
        \qquad
        y_{\text{cls}} = \left\lfloor \frac{C \,(\operatorname{atan2}(z_2, z_1) + \pi)}
        {2 \pi} \right\rfloor

    The class is the angular sector of ``z`` (``C`` equal sectors); a fraction
    ``label_noise`` of the class labels is then replaced by uniformly drawn ones,
    which gives a model something to overfit.

    Args:
        n_samples: number of samples ``N``. Default: ``1000``.
        n_features: number of input features ``F`` (at least 2). Default: ``8``.
        n_classes: number of classes ``C`` (at least 2). Default: ``3``.
        noise: standard deviation ``sigma`` of the Gaussian noise on ``y_reg``. Default: ``0.1``.
        label_noise: fraction of class labels replaced at random, in ``[0, 1]``. Default: ``0.0``.
        seed: an ``int`` seed or a ``torch.Generator``. Default: ``0``.

    Returns:
        ``{"x": (N, F) float32, "y_reg": (N, 1) float32, "y_cls": (N,) int64}``.

    Example:
        >>> data = make_multitask_data(100, n_features=4, n_classes=3, seed=0)
        >>> {k: tuple(v.shape) for k, v in data.items()}
        {'x': (100, 4), 'y_reg': (100, 1), 'y_cls': (100,)}
        >>> int(data["y_cls"].max()) < 3
        True
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=2)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    noise = check_float(noise, "noise", minimum=0.0)
    label_noise = check_float(label_noise, "label_noise", minimum=0.0, maximum=1.0)
    gen = check_generator(seed)

    x = torch.randn(n_samples, n_features, generator=gen)
    projection = torch.linalg.qr(torch.randn(n_features, 2, generator=gen)).Q * math.sqrt(2.0)
    z = x @ projection
    y_reg = torch.sin(2.0 * z[:, :1]) + 0.5 * z[:, 1:] ** 2
    y_reg = y_reg + noise * torch.randn(n_samples, 1, generator=gen)
    angle = torch.atan2(z[:, 1], z[:, 0]) + math.pi
    y_cls = (angle * n_classes / (2 * math.pi)).long().clamp_(max=n_classes - 1)
    flip = torch.rand(n_samples, generator=gen) < label_noise
    random_labels = torch.randint(n_classes, (n_samples,), generator=gen)
    y_cls = torch.where(flip, random_labels, y_cls)
    return {"x": x, "y_reg": y_reg, "y_cls": y_cls}


def _counts_from_proportions(n_samples: int, proportions: Sequence[float]) -> list[int]:
    r"""Split ``n_samples`` into integer counts by the largest-remainder rule."""
    total = sum(proportions)
    exact = [n_samples * p / total for p in proportions]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: n_samples - sum(counts)]:
        counts[i] += 1
    return counts


def make_imbalanced_data(
    n_samples: int = 2000,
    *,
    proportions: Sequence[float] = (0.95, 0.05),
    n_features: int = 2,
    class_sep: float = 1.5,
    seed: int | torch.Generator = 0,
) -> dict[str, Tensor]:
    r"""Gaussian blobs with chosen class proportions, for class-imbalance chapters.

    Class ``c`` gets ``round(N * p_c / sum(p))`` samples (rounded so that the counts
    add up to ``N`` exactly) drawn from a unit-variance Gaussian around a centre
    at distance ``class_sep`` from the origin in a random direction. Two
    proportions give a binary problem, more give a multi-class one; the samples
    come in random order.

    Args:
        n_samples: number of samples ``N``. Default: ``2000``.
        proportions: relative class frequencies, one per class (at least two,
            each positive); they need not sum to one. Default: ``(0.95, 0.05)``.
        n_features: number of input features ``F``. Default: ``2``.
        class_sep: distance of each class centre from the origin; smaller is harder.
            Default: ``1.5``.
        seed: an ``int`` seed or a ``torch.Generator``. Default: ``0``.

    Returns:
        ``{"x": (N, F) float32, "y": (N,) int64}``.

    Raises:
        ValueError: if a class would receive no sample at all.

    Example:
        >>> data = make_imbalanced_data(1000, proportions=(0.9, 0.1), seed=0)
        >>> torch.bincount(data["y"]).tolist()
        [900, 100]
    """
    n_samples = check_int(n_samples, "n_samples", minimum=2)
    n_features = check_int(n_features, "n_features", minimum=1)
    class_sep = check_float(class_sep, "class_sep", minimum=0.0)
    if isinstance(proportions, (str, bytes)) or not isinstance(proportions, Sequence):
        raise TypeError(
            f"`proportions` must be a sequence of positive numbers, got {describe(proportions)}"
        )
    if len(proportions) < 2:
        raise ValueError(f"`proportions` must give at least two classes, got {list(proportions)}")
    props = [
        check_float(p, f"proportions[{i}]", minimum=0.0, open_minimum=True)
        for i, p in enumerate(proportions)
    ]
    counts = _counts_from_proportions(n_samples, props)
    empty = [c for c, count in enumerate(counts) if count == 0]
    if empty:
        raise ValueError(
            f"class {empty[0]} would get no sample: `n_samples`={n_samples} is too small "
            f"for `proportions`={list(proportions)} (counts would be {counts})"
        )
    gen = check_generator(seed)
    directions = torch.randn(len(counts), n_features, generator=gen)
    centres = class_sep * directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    y = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    x = centres[y] + torch.randn(n_samples, n_features, generator=gen)
    order = torch.randperm(n_samples, generator=gen)
    return {"x": x[order], "y": y[order]}


def make_domain_data(
    n_per_domain: int = 500,
    *,
    n_features: int = 8,
    n_signal: int = 2,
    shift: float = 2.0,
    signal_shift: float = 0.0,
    seed: int | torch.Generator = 0,
) -> dict[str, Tensor]:
    r"""A binary task observed in two domains that differ by a shift the label ignores.

    The first ``n_signal`` features carry the label, the same way in both domains:
    ``y = 1`` when their sum is positive. The other features are nuisance: in
    domain 1 they are shifted by ``shift`` along a fixed random direction, so a
    network can tell the domains apart from them although they say nothing about
    the label. This is the setting of domain-adversarial training: features that
    serve the label but not the domain.

    With ``signal_shift > 0`` domain 1 is also offset by ``signal_shift`` along
    the diagonal of the signal features, while its label keeps following the
    values *before* the offset (a sensor offset, not a change of task): a
    classifier trained on domain 0 alone then misplaces its decision boundary in
    domain 1. The offset moves with the nuisance shift, so features that cannot
    tell the domains apart undo it.

    Args:
        n_per_domain: samples per domain; ``N = 2 * n_per_domain``. Default: ``500``.
        n_features: input features ``F`` (more than ``n_signal``). Default: ``8``.
        n_signal: features that determine the label. Default: ``2``.
        shift: size of the domain shift in the nuisance features. Default: ``2.0``.
        signal_shift: offset of domain 1's signal features along their diagonal;
            the label ignores it. Default: ``0.0``.
        seed: an ``int`` seed or a ``torch.Generator``. Default: ``0``.

    Returns:
        ``{"x": (N, F) float32, "y": (N,) int64, "domain": (N,) int64}``, in random order.

    Example:
        >>> data = make_domain_data(100, seed=0)
        >>> torch.bincount(data["domain"]).tolist()
        [100, 100]
        >>> bool(((data["x"][:, :2].sum(1) > 0).long() == data["y"]).all())
        True
    """
    n_per_domain = check_int(n_per_domain, "n_per_domain", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=2)
    n_signal = check_int(n_signal, "n_signal", minimum=1)
    if n_signal >= n_features:
        raise ValueError(
            f"`n_signal` must be smaller than `n_features` ({n_features}), got {n_signal}"
        )
    shift = check_float(shift, "shift", minimum=0.0)
    signal_shift = check_float(signal_shift, "signal_shift", minimum=0.0)
    gen = check_generator(seed)
    n = 2 * n_per_domain
    x = torch.randn(n, n_features, generator=gen)
    domain = torch.arange(n) // n_per_domain
    direction = torch.randn(n_features - n_signal, generator=gen)
    direction = direction / direction.norm()
    x[:, n_signal:] += shift * domain[:, None].float() * direction
    y = (x[:, :n_signal].sum(1) > 0).long()
    x[:, :n_signal] += signal_shift / n_signal**0.5 * domain[:, None].float()
    order = torch.randperm(n, generator=gen)
    return {"x": x[order], "y": y[order], "domain": domain[order]}


def make_segmentation_data(
    n_images: int = 256,
    *,
    size: int = 32,
    noise: float = 0.6,
    presence: Sequence[float] = (0.8, 0.7, 0.3),
    seed: int | torch.Generator = 0,
) -> dict[str, Tensor]:
    r"""Grey images of shapes on a noisy background, with a class index per pixel.

    Four classes: 0 is the background; 1 a large bright disc (radius 0.12-0.25 of
    ``size``); 2 a dark square (side 0.15-0.3 of ``size``); 3 a small bright spot
    (radius 0.035-0.06 of ``size``, a few pixels), drawn last so that it lies on top.
    Class ``c`` appears in an image with probability ``presence[c - 1]``, independently,
    so some images have an *empty* mask for a class, and class 3 is both rare and small:
    a few tenths of a percent of the pixels. The intensity is +1 on the disc, -1 on the
    square, +2 on the spot and 0 on the background, plus Gaussian noise of standard
    deviation ``noise`` on every pixel, so that no single pixel is certain.

    Args:
        n_images: number of images ``N``. Default: ``256``.
        size: height and width ``H = W`` in pixels (at least 16). Default: ``32``.
        noise: standard deviation of the pixel noise. Default: ``0.6``.
        presence: for classes 1, 2 and 3, the probability that an image contains the
            shape, each in ``[0, 1]``. Default: ``(0.8, 0.7, 0.3)``.
        seed: an ``int`` seed or a ``torch.Generator``. Default: ``0``.

    Returns:
        ``{"x": (N, 1, H, W) float32, "y": (N, H, W) int64}``, ``y`` in ``{0, 1, 2, 3}``.

    Example:
        >>> data = make_segmentation_data(64, size=32, seed=0)
        >>> tuple(data["x"].shape), tuple(data["y"].shape), data["y"].dtype
        ((64, 1, 32, 32), (64, 32, 32), torch.int64)
        >>> share = torch.bincount(data["y"].flatten(), minlength=4) / data["y"].numel()
        >>> bool(share[3] < 0.01 < share[2] < share[0])
        True
    """
    n_images = check_int(n_images, "n_images", minimum=1)
    size = check_int(size, "size", minimum=16)
    noise = check_float(noise, "noise", minimum=0.0)
    if isinstance(presence, (str, bytes)) or not isinstance(presence, Sequence):
        raise TypeError(
            f"`presence` must be a sequence of three probabilities, got {describe(presence)}"
        )
    if len(presence) != 3:
        raise ValueError(
            f"`presence` must give one probability for each of classes 1, 2 and 3, "
            f"got {len(presence)} values"
        )
    probs = [
        check_float(p, f"presence[{i}]", minimum=0.0, maximum=1.0) for i, p in enumerate(presence)
    ]
    gen = check_generator(seed)

    def uniform(low: float, high: float) -> Tensor:  # one value per image, broadcastable
        return (low + (high - low) * torch.rand(n_images, 1, 1, generator=gen)) * size

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    rows, cols = coords[:, None], coords[None, :]
    present = torch.rand(n_images, 3, generator=gen) < torch.tensor(probs)
    y = torch.zeros(n_images, size, size, dtype=torch.long)
    r1, r2, r3 = uniform(0.12, 0.25), uniform(0.075, 0.15), uniform(0.035, 0.06)
    for label, half, (radius, is_disc) in (
        (1, r1, (r1, True)),
        (2, r2, (r2, False)),
        (3, r3, (r3, True)),
    ):
        centre_r = half + torch.rand(n_images, 1, 1, generator=gen) * (size - 2 * half)
        centre_c = half + torch.rand(n_images, 1, 1, generator=gen) * (size - 2 * half)
        if is_disc:
            inside = (rows - centre_r) ** 2 + (cols - centre_c) ** 2 <= radius**2
        else:
            inside = ((rows - centre_r).abs() <= radius) & ((cols - centre_c).abs() <= radius)
        inside &= present[:, label - 1, None, None]
        y[inside] = label
    intensity = torch.tensor([0.0, 1.0, -1.0, 2.0])
    x = intensity[y] + noise * torch.randn(n_images, size, size, generator=gen)
    return {"x": x.unsqueeze(1), "y": y}


def train_val_split(
    data: Mapping[str, Tensor],
    *,
    val_fraction: float = 0.2,
    stratify: str | None = None,
    seed: int | torch.Generator = 0,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    r"""Split a dictionary of tensors into a training part and a validation part.

    Args:
        data: tensors that share their first dimension, as returned by the
            ``make_*_data`` functions.
        val_fraction: the share of samples that go to validation, in ``(0, 1)``. Default: ``0.2``.
        stratify: the key of an integer label tensor; when given, each class is
            split separately so that both parts keep the class proportions (what
            an imbalanced dataset needs). Default: ``None``.
        seed: an ``int`` seed or a ``torch.Generator``. Default: ``0``.

    Returns:
        ``(train, val)``, two dictionaries with the same keys as ``data``.

    Example:
        >>> data = make_imbalanced_data(1000, proportions=(0.9, 0.1), seed=0)
        >>> train, val = train_val_split(data, val_fraction=0.2, stratify="y")
        >>> torch.bincount(val["y"]).tolist()
        [180, 20]
    """
    tensors = check_tensor_dict(data, "data")
    val_fraction = check_float(
        val_fraction, "val_fraction", minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True
    )
    gen = check_generator(seed)
    n = len(next(iter(tensors.values())))
    if stratify is None:
        order = torch.randperm(n, generator=gen)
        n_val = round(n * val_fraction)
        val_idx, train_idx = order[:n_val], order[n_val:]
    else:
        check_choice(stratify, "stratify", sorted(tensors))
        labels = check_labels(tensors[stratify], f"data[{stratify!r}]", dim=1)
        val_parts, train_parts = [], []
        for cls in torch.unique(labels):
            members = torch.nonzero(labels == cls).squeeze(1)
            members = members[torch.randperm(len(members), generator=gen)]
            n_val = round(len(members) * val_fraction)
            val_parts.append(members[:n_val])
            train_parts.append(members[n_val:])
        val_idx = torch.cat(val_parts)[
            torch.randperm(sum(len(p) for p in val_parts), generator=gen)
        ]
        train_idx = torch.cat(train_parts)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=gen)]
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(
            f"`val_fraction`={val_fraction} leaves an empty part for {n} samples "
            f"({len(train_idx)} train, {len(val_idx)} validation)"
        )
    train = {key: value[train_idx] for key, value in tensors.items()}
    val = {key: value[val_idx] for key, value in tensors.items()}
    return train, val


class BatchLoader:
    r"""Mini-batches of an in-memory dictionary of tensors, by slicing.

    A drop-in for ``DataLoader(TensorDataset(...))`` when the whole dataset is
    already a tensor in memory: each epoch permutes the tensors once and then
    yields contiguous slices, instead of indexing sample by sample and collating
    (``make bench`` measures the difference). Iterating again starts a new epoch
    with a new permutation drawn from the loader's own generator, so a seeded
    loader gives the same batches in the same order on every run.

    Args:
        data: a mapping of name to tensor (all with the same first dimension);
            batches are dictionaries with the same keys.
        batch_size: samples per batch. Default: ``64``.
        shuffle: draw a new random order every epoch. Default: ``True``.
        drop_last: drop the last batch when it is smaller than ``batch_size``. Default: ``False``.
        seed: an ``int`` seed or a ``torch.Generator`` for the shuffling. Default: ``0``.

    Example:
        >>> data = make_multitask_data(10, seed=0)
        >>> loader = BatchLoader(data, batch_size=4, seed=0)
        >>> [len(batch["x"]) for batch in loader]
        [4, 4, 2]
        >>> len(loader)
        3
    """

    def __init__(
        self,
        data: Mapping[str, Tensor],
        batch_size: int = 64,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | torch.Generator = 0,
    ) -> None:
        self.data = check_tensor_dict(data, "data")
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.drop_last = check_bool(drop_last, "drop_last")
        self.generator = check_generator(seed)
        self.num_samples = len(next(iter(self.data.values())))
        if drop_last and self.num_samples < self.batch_size:
            raise ValueError(
                f"`drop_last=True` with `batch_size`={self.batch_size} and only "
                f"{self.num_samples} samples would give no batch at all"
            )

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        data = self.data
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=self.generator)
            on_device = {value.device: order.to(value.device) for value in data.values()}
            data = {key: value[on_device[value.device]] for key, value in data.items()}
        for i in range(len(self)):
            start = i * self.batch_size
            yield {key: value[start : start + self.batch_size] for key, value in data.items()}

    def __repr__(self) -> str:
        keys = ", ".join(self.data)
        return (
            f"BatchLoader(<{self.num_samples} samples: {keys}>, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )
