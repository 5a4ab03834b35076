"""Printing shared by the benchmarks."""

from __future__ import annotations


def report(title: str, medians: dict[str, float], baseline: str) -> None:
    """Print each candidate's median time and its ratio to ``baseline``."""
    print(title)
    base = medians[baseline]
    for name, seconds in medians.items():
        print(f"  {name:<40} {seconds * 1e3:9.2f} ms   {seconds / base:6.2f}x {baseline}")
