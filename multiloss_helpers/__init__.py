"""multiloss_helpers: the package behind the book *Multiple Losses in PyTorch*.

Every chapter imports it as ``import multiloss_helpers as mlh``. It holds what a
reader would copy into their own project: seeded synthetic data, small
multi-head models, loss combiners, per-loss gradient tools, loss-weight
schedules, the training loop that records every loss component, and the
book's figures. Each public name is documented with an example and tested.
"""

from __future__ import annotations

from .combine import LossResult, MultiTaskLoss
from .data import (
    BatchLoader,
    make_domain_data,
    make_imbalanced_data,
    make_multitask_data,
    train_val_split,
)
from .grads import assert_connected, grad_cosine, per_loss_grads
from .history import LossHistory
from .models import MultiHeadNet, default_device
from .profiling import compare_times, saved_tensor_bytes
from .reversal import GradientReversal, dann_scale, grad_reverse
from .plotting import book_style, plot_history, plot_loss_distribution, use_book_style
from .schedules import SmoothedGate, ramp
from .train import evaluate, fit, predict, unpack_loss

__version__ = "0.1.0"

__all__ = [
    "BatchLoader",
    "GradientReversal",
    "LossHistory",
    "LossResult",
    "MultiHeadNet",
    "MultiTaskLoss",
    "SmoothedGate",
    "__version__",
    "assert_connected",
    "book_style",
    "compare_times",
    "dann_scale",
    "default_device",
    "evaluate",
    "fit",
    "grad_cosine",
    "grad_reverse",
    "make_domain_data",
    "make_imbalanced_data",
    "make_multitask_data",
    "per_loss_grads",
    "plot_history",
    "plot_loss_distribution",
    "predict",
    "ramp",
    "saved_tensor_bytes",
    "train_val_split",
    "unpack_loss",
    "use_book_style",
]
