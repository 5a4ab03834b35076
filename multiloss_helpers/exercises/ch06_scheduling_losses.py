r"""Checks for the exercises of chapter 6, *Scheduling losses over training*."""

from __future__ import annotations

import math
from collections.abc import Callable

from ._harness import CheckResult, expect, run_check

__all__ = [
    "check_ema",
    "check_linear_warmup",
]


def check_linear_warmup(fn: Callable[[int, int], float]) -> CheckResult:
    r"""``fn(step, warmup)`` rises linearly from 0 to 1 over ``warmup`` steps, then stays at 1."""

    def trials() -> None:
        for warmup in (1, 4, 10):
            steps = range(3 * warmup + 2)
            values = [float(fn(step, warmup)) for step in steps]
            want = [min(step / warmup, 1.0) for step in steps]
            bad = [s for s in steps if not math.isclose(values[s], want[s], abs_tol=1e-9)]
            expect(
                not bad,
                f"with warmup={warmup}, step {bad[0] if bad else 0} gives "
                f"{values[bad[0]] if bad else 0:.3f}",
            )

    return run_check(
        "linear_warmup", fn, trials, "0 at step 0, 1 from step `warmup` on, linear between"
    )


def check_ema(fn: Callable[[list[float], float], list[float]]) -> CheckResult:
    r"""``fn(values, decay)``: the running exponential moving average from the first value."""

    def trials() -> None:
        values = [3.0, 1.0, 2.0, 0.5, 0.5]
        for decay in (0.0, 0.5, 0.9):
            got = [float(v) for v in fn(list(values), decay)]
            want: list[float] = []
            for v in values:
                want.append(v if not want else decay * want[-1] + (1 - decay) * v)
            expect(
                len(got) == len(values),
                f"return one average per value ({len(values)}), got {len(got)}",
            )
            expect(
                all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(got, want)),
                f"with decay={decay} your averages are {[round(x, 4) for x in got]}; "
                "the first average is the first value, then each step keeps `decay` of the "
                "old average",
            )

    return run_check("ema", fn, trials, "matches the moving average for every decay")
