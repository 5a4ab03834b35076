"""Per-step cost of each weighting strategy, as a ratio to the plain weighted sum.

Run with `make bench`. One training step (forward, weights, backward, optimiser step)
on a 3x512 MLP with one head per task, batch 256, T = 2, 4, 8 tasks; medians of
interleaved repeats in one run. DWA and hand-tuned weights backpropagate a fixed
weighted sum, so they cost what the baseline costs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _report import report

import multiloss_helpers as mlh

torch.set_num_threads(2)


def make_step(method: str, t: int):
    net = mlh.MultiHeadNet(64, {f"t{i}": 1 for i in range(t)}, hidden=(512, 512, 512), seed=0)
    params = list(net.parameters())
    uncertainty = mlh.UncertaintyWeighting(t)
    gradnorm = mlh.GradNorm(t)
    dwa = mlh.DWA(t)
    optimizer = torch.optim.Adam(params + list(uncertainty.parameters()), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 64, generator=gen), torch.randn(256, t, generator=gen)

    def step():
        optimizer.zero_grad()
        out = net(x)
        losses = torch.stack([F.mse_loss(out[f"t{i}"], y[:, i : i + 1]) for i in range(t)])
        if method == "uncertainty":
            uncertainty(losses).backward()
        elif method == "GradNorm":
            (gradnorm.update(losses, net.trunk[4].parameters()) * losses).sum().backward()
        elif method == "PCGrad":
            mlh.assign_grad(params, mlh.pcgrad(mlh.per_loss_grads(losses, params), generator=gen))
        elif method == "DWA":  # a DWA step per batch: an upper bound (it steps per epoch)
            (dwa.step(losses.detach()) * losses).sum().backward()
        else:
            losses.sum().backward()
        optimizer.step()

    return step


def main() -> None:
    for t in (2, 4, 8):
        methods = ("weighted sum", "uncertainty", "DWA", "GradNorm", "PCGrad")
        medians = mlh.compare_times({m: make_step(m, t) for m in methods}, repeats=9)
        report(f"one training step, T = {t} tasks, 3x512 MLP, batch 256", medians, "weighted sum")


if __name__ == "__main__":
    main()
