r"""The book's support code: the set-ups that several chapters share.

Nothing here is library API that a reader would copy into a project of their own (that
lives in the modules above); these are the datasets and models the chapters load, kept in
one place so that two chapters that compare on the same problem build it the same way.
Reach them as ``mlh.chapters.<name>``.
"""

from __future__ import annotations

from . import ddp_unused  # chapter 11's worker without find_unused_parameters
from .setups import IMBALANCE_PROBLEMS, imbalance_split, multitask_splits, two_head_net

__all__ = [
    "IMBALANCE_PROBLEMS",
    "ddp_unused",
    "imbalance_split",
    "multitask_splits",
    "two_head_net",
]
