r"""Measuring what a training step costs: time side by side, and memory kept for backward."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from ._validation import check_int, describe

__all__ = ["compare_times", "saved_tensor_bytes"]


def _sync(device: torch.device | None) -> None:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def compare_times(
    candidates: Mapping[str, Callable[[], Any]],
    *,
    repeats: int = 7,
    warmup: int = 1,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    r"""Median wall-clock seconds per call of each candidate, measured side by side.

    In every repeat each candidate runs once, in turn, so a slow moment of the
    machine hits all of them alike and their *ratios* stay meaningful even on
    a busy laptop; absolute times are only indicative. On CUDA the device is
    synchronised around each call, so queued kernels are counted.

    Args:
        candidates: maps a name to a function of no arguments.
        repeats: timed rounds; the median over them is reported. Default: ``7``.
        warmup: untimed rounds first (allocations, lazy initialisation).
            Default: ``1``.
        device: the device the candidates run on (for CUDA synchronisation).
            Default: ``None``, no synchronisation.

    Returns:
        ``{name: median seconds}`` in the order given.

    Example:
        >>> times = compare_times({"sum": lambda: sum(range(1000)),
        ...                        "loop": lambda: [i for i in range(1000)]}, repeats=3)
        >>> sorted(times)
        ['loop', 'sum']
    """
    if not isinstance(candidates, Mapping) or not candidates:
        raise TypeError(
            "`candidates` must be a non-empty mapping of name to function, "
            f"got {describe(candidates)}"
        )
    for name, fn in candidates.items():
        if not callable(fn):
            raise TypeError(f"`candidates[{name!r}]` must be callable, got {describe(fn)}")
    repeats = check_int(repeats, "repeats", minimum=1)
    warmup = check_int(warmup, "warmup", minimum=0)
    dev = torch.device(device) if device is not None else None
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            _sync(dev)
            start = time.perf_counter()
            fn()
            _sync(dev)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def saved_tensor_bytes(fn: Callable[[], Any]) -> tuple[Any, int]:
    r"""Run ``fn`` and count the bytes autograd saves for the backward pass.

    Autograd keeps some inputs and outputs of each operation (activations,
    weights) until ``backward()`` frees them: that is the memory a retained
    graph holds. The count uses ``torch.autograd.graph.saved_tensors_hooks`` and
    counts each storage once (a weight saved by several operations, or a view
    of a saved tensor, is not counted twice). Parameters are included when an
    operation saves them; they exist anyway, so compare counts between
    variants of the same model rather than reading one as an absolute cost.

    Args:
        fn: builds the graph, e.g. a forward pass and the losses; it must not
            call ``backward()`` itself.

    Returns:
        ``(fn's return value, bytes saved)``.

    Example:
        >>> w = torch.randn(100, 100, requires_grad=True)
        >>> x = torch.randn(10, 100)
        >>> _, n = saved_tensor_bytes(lambda: (x @ w).relu().sum())
        >>> n  # x, to get w's gradient (4000 B), and relu's output (4000 B)
        8000
    """
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {describe(fn)}")
    seen: dict[tuple[str, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (str(tensor.device), storage.data_ptr())
        seen[key] = max(seen.get(key, 0), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = fn()
    return result, sum(seen.values())
