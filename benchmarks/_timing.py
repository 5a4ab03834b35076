"""Side-by-side timing shared by the benchmarks: interleaved repeats, median."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def compare(
    candidates: dict[str, Callable[[], object]], *, repeats: int = 7, warmup: int = 1
) -> dict[str, float]:
    """Median seconds per call of each candidate, run in turn in every repeat.

    Interleaving the candidates within each repeat means that a slow moment of
    the machine hits all of them alike, so their ratio stays meaningful.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report(title: str, medians: dict[str, float], baseline: str) -> None:
    """Print each candidate's median time and its ratio to ``baseline``."""
    print(title)
    base = medians[baseline]
    for name, seconds in medians.items():
        print(f"  {name:<40} {seconds * 1e3:9.2f} ms   {seconds / base:6.2f}x {baseline}")
