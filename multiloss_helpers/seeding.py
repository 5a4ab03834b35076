r"""One seed for a whole chapter: :func:`seed_everything`."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ._validation import check_seed

__all__ = ["seed_everything"]

#: The environment variable that :func:`seed_everything` reads when no seed is given.
SEED_VARIABLE = "MLH_SEED"


def seed_everything(seed: int | None = None) -> int:
    r"""Seed Python's ``random``, NumPy and torch (every device), and return the seed.

    Each chapter calls it once and derives every other seed from what it returns,
    so that ``MLH_SEED=k`` reruns the whole chapter on other data, other
    initialisations and other dropout masks.

    Args:
        seed: the seed, a non-negative int. Default: ``None``, which reads the
            environment variable ``MLH_SEED`` and falls back to 0.

    Returns:
        The seed that was used.

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is negative or at least :math:`2^{64}`, or ``MLH_SEED`` is not
            such an integer.

    Example:
        >>> seed = seed_everything(3)
        >>> seed, torch.initial_seed()
        (3, 3)
    """
    if seed is None:
        raw = os.environ.get(SEED_VARIABLE, "0").strip() or "0"
        try:
            seed = int(raw)
        except ValueError:
            raise ValueError(
                f"the environment variable {SEED_VARIABLE} must be a non-negative integer, "
                f"got {raw!r}"
            ) from None
        if not 0 <= seed < 2**64:  # torch's seed range
            raise ValueError(
                f"the environment variable {SEED_VARIABLE} must be a non-negative integer "
                f"below 2**64, got {raw!r}"
            )
    else:
        seed = check_seed(seed, "seed")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds the CPU and every CUDA/MPS device
    return seed
