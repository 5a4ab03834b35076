"""Per-step cost of each weighting strategy, as a ratio to the plain sum.

Run with `make bench`. One training step (forward, `strategy.backward(losses)`,
optimiser step) on a 3x512 MLP with one head per task, batch 256, T = 2, 4, 8 tasks;
medians of interleaved repeats in one run, one intra-op thread. Every strategy runs
through the same protocol (`mlh.Weighting`); DWA steps its weights once per epoch, so
per step it costs what the plain sum costs. GradNorm looks at the last shared layer,
PCGrad and MGDA at every shared parameter (one backward pass per task through the
trunk, plus one for the heads).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from _report import report

import multiloss_helpers as mlh

torch.set_num_threads(1)


def make_strategy(method: str, t: int, net: mlh.MultiHeadNet) -> mlh.Weighting:
    shared = net.shared_parameters()
    last_layer = list(net.trunk[4].parameters())
    factories: dict[str, Callable[[], mlh.Weighting]] = {
        "equal": lambda: mlh.EqualWeighting(t),
        "uncertainty": lambda: mlh.UncertaintyWeighting(t),
        "DWA": lambda: mlh.DWA(t),
        "GradNorm": lambda: mlh.GradNorm(t, shared=last_layer),
        "PCGrad": lambda: mlh.PCGrad(t, shared=shared, seed=0),
        "MGDA": lambda: mlh.MGDA(t, shared=shared),
    }
    return factories[method]()


def make_step(method: str, t: int) -> Callable[[], None]:
    net = mlh.MultiHeadNet(64, {f"t{i}": 1 for i in range(t)}, hidden=(512, 512, 512), seed=0)
    strategy = make_strategy(method, t, net)
    optimizer = torch.optim.Adam([*net.parameters(), *strategy.parameters()], lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 64, generator=gen), torch.randn(256, t, generator=gen)

    def step() -> None:
        optimizer.zero_grad()
        out = net(x)
        losses = torch.stack([F.mse_loss(out[f"t{i}"], y[:, i : i + 1]) for i in range(t)])
        strategy.backward(losses)
        optimizer.step()

    return step


def main() -> None:
    methods = ("equal", "uncertainty", "DWA", "GradNorm", "PCGrad", "MGDA")
    for t in (2, 4, 8):
        medians = mlh.compare_times({m: make_step(m, t) for m in methods}, repeats=9)
        report(f"one training step, T = {t} tasks, 3x512 MLP, batch 256", medians, "equal")


if __name__ == "__main__":
    main()
