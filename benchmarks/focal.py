"""Focal losses and class weights against the forms readers would otherwise use.

Run with `make bench` (which installs kornia and scikit-learn for this script only).
All timings are forward + backward, medians of interleaved repeats in one run.

1. Multi-class, 65536 x 10 logits, gamma = 2: mlh.focal_loss vs the cross-entropy-based
   form, a log-softmax form, and kornia.losses.focal_loss (alpha=None; kornia's "mean"
   averages over N * C elements, so its value is ours / C). Goal: <= 0.9x kornia.
2. Binary, 1e6 logits, alpha = 0.25, gamma = 2: mlh.binary_focal_loss vs the torchvision
   formulation (sigmoid_focal_loss). Goal: <= 1.0x.
3. mlh.class_weights vs scikit-learn's compute_class_weight("balanced") on 1e7 labels.
   Goal: >= 10x faster.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from _report import report

import multiloss_helpers as mlh

torch.set_num_threads(2)


def ce_based(logits, target, gamma):
    ce = F.cross_entropy(logits, target, reduction="none")
    p_t = torch.exp(-ce)
    return ((1 - p_t) ** gamma * ce).mean()


def log_softmax_based(logits, target, gamma):
    log_pt = torch.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()


def torchvision_form(logits, target, alpha, gamma):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * loss).mean()


def fwd_bwd(fn, x, *args):
    def run():
        x.grad = None
        fn(x, *args).backward()

    return run


def multiclass() -> float:
    from kornia.losses import focal_loss as kornia_focal

    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(65536, 10, generator=gen)).requires_grad_()
    target = torch.randint(10, (65536,), generator=gen)
    ours = mlh.focal_loss(logits, target, gamma=2.0)
    torch.testing.assert_close(ours, ce_based(logits, target, 2.0))
    theirs = kornia_focal(logits, target, alpha=None, gamma=2.0, reduction="mean")
    print(
        f"values: mlh {ours.item():.6f}, kornia {theirs.item():.6f} "
        f"(kornia x C = {10 * theirs.item():.6f})"
    )
    medians = mlh.compare_times(
        {
            "mlh.focal_loss": fwd_bwd(lambda x, t: mlh.focal_loss(x, t, gamma=2.0), logits, target),
            "cross-entropy-based form": fwd_bwd(ce_based, logits, target, 2.0),
            "log-softmax form": fwd_bwd(log_softmax_based, logits, target, 2.0),
            "kornia.losses.focal_loss": fwd_bwd(
                lambda x, t: kornia_focal(x, t, alpha=None, gamma=2.0, reduction="mean"),
                logits,
                target,
            ),
        },
        repeats=9,
    )
    report(
        "multi-class focal loss, 65536 x 10, gamma=2, forward+backward", medians, "mlh.focal_loss"
    )
    vs_kornia = medians["mlh.focal_loss"] / medians["kornia.losses.focal_loss"]
    vs_ce = medians["mlh.focal_loss"] / medians["cross-entropy-based form"]
    print(f"  mlh / kornia: {vs_kornia:.2f}x (goal <= 0.9x); mlh / CE-based form: {vs_ce:.2f}x")
    return vs_kornia


def binary() -> float:
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(1_000_000, generator=gen)).requires_grad_()
    target = (torch.rand(1_000_000, generator=gen) < 0.1).float()
    torch.testing.assert_close(
        mlh.binary_focal_loss(logits, target, alpha=0.25, gamma=2.0),
        torchvision_form(logits, target, 0.25, 2.0),
    )
    medians = mlh.compare_times(
        {
            "mlh.binary_focal_loss": fwd_bwd(
                lambda x, t: mlh.binary_focal_loss(x, t, alpha=0.25, gamma=2.0), logits, target
            ),
            "torchvision formulation": fwd_bwd(torchvision_form, logits, target, 0.25, 2.0),
        },
        repeats=9,
    )
    report(
        "binary focal loss, 1e6 logits, alpha=0.25, gamma=2, forward+backward",
        medians,
        "mlh.binary_focal_loss",
    )
    ratio = medians["mlh.binary_focal_loss"] / medians["torchvision formulation"]
    print(f"  mlh / torchvision formulation: {ratio:.2f}x (goal <= 1.0x)")
    return ratio


def weights() -> float:
    from sklearn.utils.class_weight import compute_class_weight

    gen = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.6, 0.2, 0.1, 0.05, 0.03, 0.02])
    labels = torch.multinomial(probs, 10_000_000, replacement=True, generator=gen)
    labels_np = labels.numpy()
    classes = np.arange(6)
    ours = mlh.class_weights(labels, 6)
    ref = compute_class_weight("balanced", classes=classes, y=labels_np)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5)
    medians = mlh.compare_times(
        {
            "mlh.class_weights": lambda: mlh.class_weights(labels, 6),
            "sklearn compute_class_weight": lambda: compute_class_weight(
                "balanced", classes=classes, y=labels_np
            ),
        },
        repeats=5,
    )
    report("balanced class weights, 1e7 labels, 6 classes", medians, "mlh.class_weights")
    speedup = medians["sklearn compute_class_weight"] / medians["mlh.class_weights"]
    print(f"  mlh is {speedup:.1f}x faster than scikit-learn (goal >= 10x)")
    return speedup


if __name__ == "__main__":
    multiclass()
    binary()
    weights()
