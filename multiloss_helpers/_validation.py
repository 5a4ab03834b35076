r"""Input checks shared by every public function.

Each check raises a ``TypeError`` or ``ValueError`` whose message names the
argument, says what was expected and shows what arrived, so that a reader sees
the mistake at the call site instead of deep inside torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any

import torch
from torch import Tensor, nn

REDUCTIONS = ("mean", "sum", "none")


def describe(value: Any) -> str:
    r"""A short description of ``value`` for an error message."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def check_int(value: Any, name: str, *, minimum: int | None = None) -> int:
    r"""Return ``value`` as an ``int`` after checking its type and lower bound."""
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
    r"""Return ``value`` as a finite ``float`` inside the given bounds."""
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
    r"""``value`` if it is a tensor, else a ``TypeError`` naming ``name``."""
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {describe(value)}")
    return value


def check_bool(value: Any, name: str) -> bool:
    r"""Return ``value`` after checking that it is a ``bool`` (not 0/1, not a tensor)."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be a bool (True or False), got {describe(value)}")
    return value


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    r"""Return ``value`` after checking that it is one of ``choices``."""
    options = tuple(choices)
    if isinstance(value, Tensor) or value not in options:
        raise ValueError(f"`{name}` must be one of {options}, got {value!r}")
    return value


def check_real_floating(value: Tensor, subject: str) -> None:
    r"""A ``TypeError`` unless ``value`` is a real floating-point tensor.

    ``subject`` is how the message names it, e.g. ``"`loss`"``.
    """
    if not value.is_floating_point():
        raise TypeError(f"{subject} must be a real floating-point tensor, got {value.dtype}")


def check_scalar(value: Any, name: str) -> Tensor:
    r"""A tensor with one element (a loss), as a 0-d tensor.

    Not a tensor is a ``TypeError``; a tensor of another shape is a ``ValueError``.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a scalar tensor, got {describe(value)}")
    if value.numel() != 1:
        raise ValueError(
            f"`{name}` must be a scalar tensor (one element), got shape {tuple(value.shape)}; "
            "reduce it first (e.g. `.mean()`)"
        )
    return value.reshape(())


def check_labels(value: Any, name: str, *, dim: int | None = None) -> Tensor:
    r"""An integer tensor of class labels.

    One rule for every function that takes labels: floating, complex and
    ``bool`` tensors are a ``TypeError`` (a bool tensor is a mask, not labels:
    convert with ``.long()`` if 0/1 classes are meant); a tensor with a number
    of dimensions other than ``dim`` is a ``ValueError``.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"`{name}` must be a tensor of integer class labels, got {describe(value)}")
    if value.dtype.is_floating_point or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(
            f"`{name}` must hold integer class labels (e.g. torch.long), got {value.dtype}"
            + (
                "; a bool tensor is a mask: use `.long()` for 0/1 classes"
                if value.dtype == torch.bool
                else ""
            )
        )
    if dim is not None and value.dim() != dim:
        raise ValueError(
            f"`{name}` must be a {dim}-D tensor of class labels, got shape {tuple(value.shape)}"
        )
    return value


def check_params(
    params: Any, name: str = "params", *, single: bool = True, requires_grad: bool = False
) -> list[Tensor]:
    r"""Normalise parameters to a non-empty list of tensors on one device.

    The package's one parameter-list normaliser. Accepts a module (its
    ``parameters()``), a mapping (its values, e.g. ``dict(model.named_parameters())``),
    an iterable of tensors, or, when ``single`` is true, one tensor (a list of one).
    With ``single=False`` one tensor is a ``TypeError``: iterating it would silently
    give its rows. With ``requires_grad=True`` every tensor must require grad.
    """
    if isinstance(params, nn.Module):
        items: list[Tensor] = list(params.parameters())
    elif isinstance(params, Tensor):
        if not single:
            raise TypeError(
                f"`{name}` must be an iterable of tensors (e.g. model.shared_parameters() or "
                f"[weight]) or a module, got one {describe(params)}; wrap it in a list: [{name}]"
            )
        items = [params]
    elif isinstance(params, Mapping):
        items = list(params.values())
    elif isinstance(params, Iterable) and not isinstance(params, (str, bytes)):
        items = list(params)
    else:
        raise TypeError(
            f"`{name}` must be {_PARAM_FORMS[single, requires_grad]}, got {describe(params)}"
        )
    if not items:
        raise ValueError(f"`{name}` is empty")
    for i, p in enumerate(items):
        if not isinstance(p, Tensor):
            raise TypeError(f"`{name}[{i}]` must be a tensor, got {describe(p)}")
        if requires_grad and not p.requires_grad:
            raise ValueError(f"`{name}[{i}]` does not require grad, so it has no gradient")
        if p.device != items[0].device:
            raise ValueError(
                f"`{name}` must all be on one device, got {items[0].device} for `{name}[0]` "
                f"and {p.device} for `{name}[{i}]`"
            )
    return items


def check_unique(items: list[Tensor], name: str) -> None:
    r"""A ``ValueError`` when one tensor appears twice in ``items`` (it would count twice)."""
    seen: dict[int, int] = {}
    for i, item in enumerate(items):
        if id(item) in seen:
            raise ValueError(
                f"`{name}[{i}]` is `{name}[{seen[id(item)]}]` again: list each tensor once "
                "(model.parameters() does), or it counts twice"
            )
        seen[id(item)] = i


#: What :func:`check_params` accepts, by ``(single, requires_grad)``, for its messages.
_PARAM_FORMS = {
    (True, True): "a tensor, a module or an iterable of tensors that require grad",
    (True, False): "a module, a tensor or an iterable of tensors",
    (False, True): "a module or an iterable of tensors that require grad",
    (False, False): "a module or an iterable of tensors",
}


def check_grad_matrix(grads: Any, name: str = "grads") -> Tensor:
    r"""A ``(T, P)`` floating-point tensor with ``T >= 1`` and ``P >= 1``."""
    if not isinstance(grads, Tensor):
        raise TypeError(f"`{name}` must be a (T, P) tensor, got {describe(grads)}")
    if grads.dim() != 2 or grads.shape[0] == 0 or grads.shape[1] == 0:
        raise ValueError(
            f"`{name}` must have shape (T, P) with T >= 1 and P >= 1, got {tuple(grads.shape)}"
        )
    if not grads.is_floating_point():
        raise TypeError(f"`{name}` must be a floating-point tensor, got {grads.dtype}")
    return grads


def check_reduction(reduction: Any) -> str:
    r"""Check ``reduction`` against the values PyTorch's losses accept."""
    return check_choice(reduction, "reduction", REDUCTIONS)


def check_generator(seed: Any, name: str = "seed") -> torch.Generator:
    r"""Turn an ``int`` seed or a ``torch.Generator`` into a generator."""
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise ValueError(
                f"`{name}` must be an int or a CPU torch.Generator (the data is drawn on the "
                f"CPU), got a generator on {seed.device}"
            )
        return seed
    seed = check_seed(seed, name)
    return torch.Generator().manual_seed(seed)


def check_seed(value: Any, name: str = "seed") -> int:
    r"""An int seed that ``torch.manual_seed`` takes: ``0 <= seed < 2**64``."""
    seed = check_int(value, name, minimum=0)
    if seed >= 2**64:
        raise ValueError(f"`{name}` must be < 2**64 (torch's seed range), got {seed}")
    return seed


def check_tensor_dict(data: Any, name: str) -> dict[str, Tensor]:
    r"""Check a mapping of name to tensor whose first dimensions agree."""
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


def check_module_names(mapping: Any, name: str, what: str) -> dict[str, Any]:
    r"""A non-empty mapping whose keys can name submodules (non-empty, no '.')."""
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


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` (torch < 2.4 has no argument for it)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: CUDA without an argument, the CPU on its own
        if device_type == "cpu":
            return bool(torch.is_autocast_cpu_enabled())
        return bool(torch.is_autocast_enabled())
