"""Summed vs separate backward vs mlh.per_loss_grads vs a hand-written autograd.grad loop.

Run with `make bench`. For T = 2, 4, 8 losses on a 3x512 MLP with one head per loss
(batch 256), prints the median time of one forward+backward of each method as a ratio
to the summed step, measured side by side in one run, and the memory each holds at
its peak beyond the parameters: the tensors autograd saves for backward (the same
graph for all four) plus gradient storage (P floats in .grad, or a T x P matrix).
Goal: mlh.per_loss_grads at most 1.05x the hand-written loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _report import report

import multiloss_helpers as mlh

torch.set_num_threads(2)


def main() -> None:
    worst = 0.0
    for t in (2, 4, 8):
        net = mlh.MultiHeadNet(64, {f"t{i}": 1 for i in range(t)}, hidden=(512, 512, 512), seed=0)
        params = list(net.parameters())
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(256, 64, generator=gen)
        y = torch.randn(256, t, generator=gen)

        def losses():
            out = net(x)
            return [F.mse_loss(out[f"t{i}"], y[:, i : i + 1]) for i in range(t)]

        def summed():
            net.zero_grad(set_to_none=False)
            torch.stack(losses()).sum().backward()

        def separate():
            net.zero_grad(set_to_none=False)
            items = losses()
            for i, loss in enumerate(items):
                loss.backward(retain_graph=i < t - 1)

        def per_loss():
            return mlh.per_loss_grads(losses(), params)

        def hand_loop():
            items = losses()
            rows = []
            for i, loss in enumerate(items):
                grads = torch.autograd.grad(loss, params, retain_graph=i < t - 1, allow_unused=True)
                rows.append(
                    torch.cat(
                        [
                            (g if g is not None else torch.zeros_like(p)).flatten()
                            for g, p in zip(grads, params)
                        ]
                    )
                )
            return torch.stack(rows)

        medians = mlh.compare_times(
            {
                "summed": summed,
                "separate backward": separate,
                "mlh.per_loss_grads": per_loss,
                "hand-written autograd.grad loop": hand_loop,
            },
            repeats=21,
        )
        report(f"T = {t} losses, 3x512 MLP, batch 256", medians, "summed")
        ratio = medians["mlh.per_loss_grads"] / medians["hand-written autograd.grad loop"]
        worst = max(worst, ratio)
        print(f"  per_loss_grads / hand-written loop: {ratio:.2f}x (goal <= 1.05x)")

        _, saved = mlh.saved_tensor_bytes(losses)
        n_params = sum(p.numel() for p in params)
        bytes_per = params[0].element_size()
        print(
            f"  memory held beyond the parameters: summed and separate "
            f"{(saved + n_params * bytes_per) / 2**20:.1f} MiB; per_loss_grads "
            f"{(saved + t * n_params * bytes_per) / 2**20:.1f} MiB (T x P matrix)"
        )
    print(f"worst per_loss_grads / hand-written loop over T: {worst:.2f}x")


if __name__ == "__main__":
    main()
