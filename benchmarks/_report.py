"""Printing and paired timing shared by the benchmarks."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

# glibc gives buffers of more than 128 KiB straight back to the kernel when they are freed,
# and the next call faults every page in again. How often that happens depends on the order
# of the calls before it, and it costs more than the arithmetic of a 1e6-element loss: the
# same F.binary_cross_entropy_with_logits took 2 ms or 6 ms depending on what ran before it.
# A training loop reaches a steady state in which the heap is reused; these settings give
# that steady state to every candidate alike (they favour the candidates that allocate most,
# the torch floor among them).
STEADY_HEAP = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


def use_steady_heap() -> None:
    """Re-run this script with glibc's heap kept (no-op where already set, or off Linux)."""
    if sys.platform.startswith("linux") and any(k not in os.environ for k in STEADY_HEAP):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **STEADY_HEAP})


def report(title: str, medians: dict[str, float], baseline: str) -> None:
    """Print each candidate's median time and its ratio to ``baseline``."""
    print(title)
    base = medians[baseline]
    for name, seconds in medians.items():
        print(f"  {name:<40} {seconds * 1e3:9.2f} ms   {seconds / base:6.2f}x {baseline}")


def paired_ratio(
    candidate: Callable[[], Any], floor: Callable[[], Any], rounds: int = 41
) -> tuple[float, float, float]:
    """Median and quartiles of ``time(candidate) / time(floor)`` over paired rounds.

    Each round runs the two back to back, in alternating order, so that both see the same
    moment of the machine and neither always runs on the other's cache; the ratio is taken
    within the round, and the median over rounds is reported.
    """
    candidate()
    floor()
    ratios = []
    for index in range(rounds):
        order = (candidate, floor) if index % 2 == 0 else (floor, candidate)
        seconds = {}
        for fn in order:
            start = time.perf_counter()
            fn()
            seconds[fn] = time.perf_counter() - start
        ratios.append(seconds[candidate] / seconds[floor])
    low, mid, high = statistics.quantiles(ratios, n=4)
    return mid, low, high
