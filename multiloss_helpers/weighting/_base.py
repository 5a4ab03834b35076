"""What every weighting strategy shares: the number of tasks and input checks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._validation import check_int, describe


def check_num_tasks(num_tasks: Any) -> int:
    """``num_tasks`` as an int of at least 1."""
    return check_int(num_tasks, "num_tasks", minimum=1)


def check_task_vector(values: Any, name: str, num_tasks: int, *, finite: bool = True) -> Tensor:
    """A 1-D floating-point tensor with one entry per task."""
    if not isinstance(values, Tensor):
        raise TypeError(
            f"`{name}` must be a tensor with one entry per task, got {describe(values)}"
        )
    if values.shape != (num_tasks,):
        raise ValueError(
            f"`{name}` must have shape ({num_tasks},), one entry per task, got {tuple(values.shape)}"
        )
    if not values.is_floating_point():
        raise TypeError(f"`{name}` must be floating point, got {values.dtype}")
    if finite and not bool(torch.isfinite(values).all()):
        raise ValueError(f"`{name}` must be finite, got {values.tolist()}")
    return values
