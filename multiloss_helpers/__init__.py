"""multiloss_helpers: the package behind the book *Multiple Losses in PyTorch*.

Every chapter imports it as ``import multiloss_helpers as mlh``. It holds what a
reader would copy into their own project: seeded synthetic data, small
multi-head models, the training loop that records every loss component, and
the book's figures. Each public name is documented with an example and tested.
"""

from __future__ import annotations

from .data import BatchLoader, make_imbalanced_data, make_multitask_data, train_val_split
from .history import LossHistory
from .models import MultiHeadNet, default_device
from .plotting import book_style, plot_history, plot_loss_distribution, use_book_style
from .train import evaluate, fit, predict, unpack_loss

__version__ = "0.1.0"

__all__ = [
    "BatchLoader",
    "LossHistory",
    "MultiHeadNet",
    "__version__",
    "book_style",
    "default_device",
    "evaluate",
    "fit",
    "make_imbalanced_data",
    "make_multitask_data",
    "plot_history",
    "plot_loss_distribution",
    "predict",
    "train_val_split",
    "unpack_loss",
    "use_book_style",
]
