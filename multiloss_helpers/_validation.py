"""Input checks shared by every public function.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
argument, says what was expected and shows what arrived, so that a reader sees
the mistake at the call site instead of deep inside torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import Tensor

REDUCTIONS = ("mean", "sum", "none")


def describe(value: Any) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int`` after checking its type and lower bound."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"`{name}` must be an int, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_minimum: bool = False,
    open_maximum: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` inside the given bounds."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"`{name}` must be a real number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}")
    if minimum is not None and (value < minimum or (open_minimum and value == minimum)):
        relation = ">" if open_minimum else ">="
        raise ValueError(f"`{name}` must be {relation} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (open_maximum and value == maximum)):
        relation = "<" if open_maximum else "<="
        raise ValueError(f"`{name}` must be {relation} {maximum}, got {value}")
    return value


def check_tensor(value: Any, name: str) -> Tensor:
    """Check that ``value`` is a tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {describe(value)}")
    return value


def check_reduction(reduction: Any) -> str:
    """Check ``reduction`` against the values PyTorch's losses accept."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_generator(seed: Any, name: str = "seed") -> torch.Generator:
    """Turn an ``int`` seed or a ``torch.Generator`` into a generator."""
    if isinstance(seed, torch.Generator):
        return seed
    seed = check_int(seed, name, minimum=0)
    return torch.Generator().manual_seed(seed)


def check_tensor_dict(data: Any, name: str) -> dict[str, Tensor]:
    """Check a mapping of name to tensor whose first dimensions agree."""
    if not isinstance(data, Mapping) or not data:
        raise TypeError(
            f"`{name}` must be a non-empty mapping of name to tensor, got {describe(data)}"
        )
    out: dict[str, Tensor] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"`{name}` keys must be strings, got {describe(key)}")
        if not isinstance(value, Tensor) or value.dim() == 0:
            raise TypeError(
                f"`{name}[{key!r}]` must be a tensor with a batch dimension, got {describe(value)}"
            )
        out[key] = value
    lengths = {key: len(value) for key, value in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"every tensor in `{name}` must have the same length, got {lengths}")
    return out


def check_names(names: Any, name: str) -> list[str]:
    """Check a non-empty sequence of distinct strings."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise TypeError(f"`{name}` must be a non-empty list of strings, got {describe(names)}")
    for item in names:
        if not isinstance(item, str):
            raise TypeError(f"`{name}` must contain strings, got {describe(item)}")
    if len(set(names)) != len(names):
        raise ValueError(f"`{name}` must not repeat a name, got {list(names)}")
    return list(names)


def check_module_names(mapping: Any, name: str, what: str) -> dict[str, Any]:
    """A non-empty mapping whose keys can name submodules (non-empty, no '.')."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise TypeError(f"`{name}` must be a non-empty mapping of {what}, got {describe(mapping)}")
    for key in mapping:
        if not isinstance(key, str) or not key or "." in key:
            raise ValueError(f"`{name}` names must be non-empty strings without '.', got {key!r}")
    return dict(mapping)


def check_same_device(tensor: Tensor, name: str, other: Tensor, other_name: str) -> None:
    """Check that two tensors that meet in one operation live on the same device."""
    if tensor.device != other.device:
        raise ValueError(
            f"`{name}` is on {tensor.device} but `{other_name}` is on {other.device}; "
            f"move `{name}` with .to({str(other.device)!r})"
        )
