"""Soft Dice loss against MONAI's DiceLoss.

Run with `make bench` (which installs MONAI; without it this benchmark says so and skips).
Forward + backward of `mlh.dice_loss` and of MONAI's
`DiceLoss(softmax=True, to_onehot_y=True)` on (8, 4, 128, 128) logits with class-index
targets, one intra-op thread. The values are checked equal first. The ratio is measured in
pairs (the two back to back, alternating order, median of the per-round ratios;
`_report.paired_ratio`) with glibc's heap kept between calls (`_report.use_steady_heap`).
Goal: mlh / MONAI <= 1.0x.
"""

from __future__ import annotations

import torch
from _report import paired_ratio, report, use_steady_heap

import multiloss_helpers as mlh

torch.set_num_threads(1)
SHAPE = (8, 4, 128, 128)


def fwd_bwd(fn, x, target):
    def run():
        x.grad = None
        fn(x, target).backward()

    return run


def dice() -> float | None:
    try:
        from monai.losses import DiceLoss
    except ImportError:
        print("dice: MONAI is not installed (`make bench` installs it); skipped")
        return None
    gen = torch.Generator().manual_seed(0)
    logits = (2 * torch.randn(*SHAPE, generator=gen)).requires_grad_()
    target = torch.randint(SHAPE[1], (SHAPE[0], *SHAPE[2:]), generator=gen)
    monai_dice = DiceLoss(softmax=True, to_onehot_y=True)
    torch.testing.assert_close(
        mlh.dice_loss(logits, target), monai_dice(logits, target.unsqueeze(1))
    )
    candidates = {
        "mlh.dice_loss": fwd_bwd(mlh.dice_loss, logits, target),
        "monai DiceLoss": fwd_bwd(lambda x, t: monai_dice(x, t.unsqueeze(1)), logits, target),
    }
    medians = mlh.compare_times(candidates, repeats=15)
    report(f"soft Dice, {SHAPE}, forward+backward", medians, "monai DiceLoss")
    ratio, low, high = paired_ratio(candidates["mlh.dice_loss"], candidates["monai DiceLoss"])
    print(f"  mlh / MONAI, paired: {ratio:.2f}x (quartiles {low:.2f}-{high:.2f}; goal <= 1.0x)")
    return ratio


if __name__ == "__main__":
    use_steady_heap()
    dice()
