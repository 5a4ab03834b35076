r"""The book's support code: the set-ups that several chapters share, and chapter 11's workers.

Nothing here is library API that a reader would copy into a project of their own (that
lives in the modules above); these are the datasets and models the chapters load, kept in
one place so that two chapters that compare on the same problem build it the same way.
Reach them as ``mlh.chapters.<name>``; chapter 11's distributed workers are in
:mod:`multiloss_helpers.chapters.ch11_workers` (a module of their own, because the
processes that ``mlh.launch`` spawns import them by module path).
"""

from __future__ import annotations

from . import ch11_workers as ch11_workers  # a submodule: mlh.chapters.ch11_workers
from .segmentation import SegmentationNets, expected_calibration_error, overlap_dice
from .setups import IMBALANCE_PROBLEMS, imbalance_split, multitask_splits, two_head_net

__all__ = [
    "IMBALANCE_PROBLEMS",
    "SegmentationNets",
    "expected_calibration_error",
    "imbalance_split",
    "multitask_splits",
    "overlap_dice",
    "two_head_net",
]
