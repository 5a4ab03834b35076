r"""multiloss_helpers: the package behind the book *Multiple Losses in PyTorch*.

Every chapter imports it as ``import multiloss_helpers as mlh``. It holds what a
reader would copy into their own project: seeded synthetic data, small
multi-head models, focal losses and class-imbalance weights, loss combiners,
per-loss gradient tools, task-weighting strategies behind one protocol,
loss-weight schedules, the training loop that records every loss component,
metrics for imbalanced data, and the book's figures. Each public name is
documented with an example and tested.
"""

from __future__ import annotations

from . import chapters, exercises
from .class_balance import class_weights, sample_weights
from .combine import LossResult, MultiTaskLoss
from .composite import DistillationLoss, distillation_loss, gaussian_kl
from .data import (
    BatchLoader,
    make_domain_data,
    make_imbalanced_data,
    make_multitask_data,
    train_val_split,
)
from .distributed import WorkerError, ddp_mean, launch
from .gan_data import make_ring_data, ring_centres
from .grads import assert_connected, assign_grad, flat_grad, grad_cosine, per_loss_grads
from .history import LossHistory
from .losses import BinaryFocalLoss, FocalLoss, binary_focal_loss, focal_loss
from .metrics import (
    balanced_accuracy,
    confusion_matrix,
    per_class_precision,
    per_class_recall,
    precision_recall_curve,
)
from .models import MultiHeadNet, default_device
from .objectives import plot_pareto_front
from .plotting import (
    book_style,
    plot_confusion_matrix,
    plot_history,
    plot_loss_distribution,
    plot_precision_recall,
    use_book_style,
)
from .profiling import compare_times, saved_tensor_bytes
from .regularisers import l1_penalty, l2_penalty, predictive_entropy, weight_decay_groups
from .reversal import GradientReversal, dann_scale, grad_reverse
from .schedules import SmoothedGate, ramp
from .seeding import seed_everything
from .train import Callback, evaluate, fit, predict, unpack_loss
from .weighting import (
    DWA,
    MGDA,
    EqualWeighting,
    FixedWeighting,
    GradNorm,
    PCGrad,
    UncertaintyWeighting,
    Weighting,
    mgda,
    min_norm_weights,
    pareto_front,
    pcgrad,
)

__version__ = "0.2.0"

__all__ = [
    "BatchLoader",
    "BinaryFocalLoss",
    "Callback",
    "DWA",
    "DistillationLoss",
    "EqualWeighting",
    "FixedWeighting",
    "FocalLoss",
    "GradNorm",
    "GradientReversal",
    "LossHistory",
    "LossResult",
    "MGDA",
    "MultiHeadNet",
    "MultiTaskLoss",
    "PCGrad",
    "SmoothedGate",
    "UncertaintyWeighting",
    "Weighting",
    "WorkerError",
    "__version__",
    "assert_connected",
    "assign_grad",
    "balanced_accuracy",
    "binary_focal_loss",
    "book_style",
    "class_weights",
    "compare_times",
    "confusion_matrix",
    "dann_scale",
    "ddp_mean",
    "default_device",
    "distillation_loss",
    "evaluate",
    "exercises",
    "fit",
    "flat_grad",
    "focal_loss",
    "gaussian_kl",
    "grad_cosine",
    "grad_reverse",
    "l1_penalty",
    "l2_penalty",
    "launch",
    "make_domain_data",
    "make_imbalanced_data",
    "make_multitask_data",
    "make_ring_data",
    "mgda",
    "min_norm_weights",
    "pareto_front",
    "pcgrad",
    "per_class_precision",
    "per_class_recall",
    "per_loss_grads",
    "plot_confusion_matrix",
    "plot_history",
    "plot_loss_distribution",
    "plot_pareto_front",
    "plot_precision_recall",
    "precision_recall_curve",
    "predict",
    "predictive_entropy",
    "ramp",
    "ring_centres",
    "sample_weights",
    "saved_tensor_bytes",
    "seed_everything",
    "train_val_split",
    "unpack_loss",
    "use_book_style",
    "weight_decay_groups",
]
