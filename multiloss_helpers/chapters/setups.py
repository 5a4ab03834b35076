r"""Problems and models that several chapters share (chapters 5-6, 8-11 and 15)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

import torch
from torch import Tensor

from .._validation import check_choice, check_int, check_seed
from ..data import make_imbalanced_data, make_multitask_data, train_val_split
from ..models import MultiHeadNet, default_device

__all__ = ["IMBALANCE_PROBLEMS", "imbalance_split", "multitask_splits", "two_head_net"]

Split = dict[str, Tensor]


class ImbalanceProblem(NamedTuple):
    r"""The arguments of :func:`multiloss_helpers.make_imbalanced_data` for one problem."""

    proportions: tuple[float, ...]
    class_sep: float


#: The two imbalanced problems of chapters 8 and 9: the arguments of
#: :func:`multiloss_helpers.make_imbalanced_data` for each.
IMBALANCE_PROBLEMS: Mapping[str, ImbalanceProblem] = MappingProxyType(
    {
        "binary 95/5": ImbalanceProblem((0.95, 0.05), 1.5),
        "5-class long tail": ImbalanceProblem((0.6, 0.25, 0.1, 0.04, 0.01), 2.0),
    }
)


def imbalance_split(problem: str, seed: int, *, n: int = 3000) -> tuple[Split, Split]:
    r"""One of chapters 8-9's imbalanced problems, split 70/30 with the classes stratified.

    Args:
        problem (str): a key of :data:`IMBALANCE_PROBLEMS`.
        seed (int): seeds both the data and the split.
        n (int): the number of samples before the split. Default: ``3000``.

    Returns:
        ``(train, val)``, dictionaries with ``"x"`` and ``"y"``.

    Example:
        >>> train, val = imbalance_split("binary 95/5", 0, n=100)
        >>> len(train["y"]), len(val["y"])
        (70, 30)
    """
    check_choice(problem, "problem", IMBALANCE_PROBLEMS)
    seed = check_seed(seed)
    n = check_int(n, "n", minimum=10)
    data = make_imbalanced_data(n, seed=seed, **IMBALANCE_PROBLEMS[problem]._asdict())
    return train_val_split(data, val_fraction=0.3, stratify="y", seed=seed)


def multitask_splits(seed: int) -> tuple[Split, Split, Split]:
    r"""Chapters 10 and 15's two-task problem: train, validation and test parts.

    900 samples of :func:`multiloss_helpers.make_multitask_data` (3 classes, noise 0.2,
    5 % label noise) whose regression target is scaled by 10, so that the two losses
    start two orders of magnitude apart; a third is held out for test, and a quarter of
    the rest for validation (450 / 150 / 300).

    Args:
        seed (int): seeds the data and both splits.

    Example:
        >>> train, val, test = multitask_splits(0)
        >>> [len(part["x"]) for part in (train, val, test)]
        [450, 150, 300]
    """
    seed = check_seed(seed)
    data = make_multitask_data(
        900, n_features=8, n_classes=3, noise=0.2, label_noise=0.05, seed=seed
    )
    data["y_reg"] = 10 * data["y_reg"]
    rest, test = train_val_split(data, val_fraction=1 / 3, seed=seed)
    train, val = train_val_split(rest, val_fraction=0.25, seed=seed)
    return train, val, test


def two_head_net(
    seed: int, *, n_classes: int = 3, device: torch.device | str | None = None
) -> MultiHeadNet:
    r"""The book's two-task network: 8 inputs, two hidden layers of 64, heads ``cls`` and ``reg``.

    Args:
        seed (int): seeds the initialisation.
        n_classes (int): outputs of the ``cls`` head. Default: ``3``.
        device: where to put it. Default: :func:`multiloss_helpers.default_device`.

    Example:
        >>> net = two_head_net(0, device="cpu")
        >>> {name: tuple(out.shape) for name, out in net(torch.zeros(5, 8)).items()}
        {'cls': (5, 3), 'reg': (5, 1)}
    """
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    net = MultiHeadNet(8, {"cls": n_classes, "reg": 1}, hidden=(64, 64), seed=seed)
    return net.to(default_device() if device is None else device)
