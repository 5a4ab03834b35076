r"""Chapter 11's DDP worker for ``no_sync`` per loss *without* ``find_unused_parameters``.

Processes started with ``spawn`` import the function they run, so the worker lives in a
module. It runs the pattern of :func:`multiloss_helpers.distributed.ddp_no_sync_losses_worker`
(a forward and a backward per loss, ``no_sync`` on all but the last) with DDP's default
``find_unused_parameters=False``, and reports what that costs: the gradients of this
iteration are never all-reduced (no error yet), and the *next* forward raises.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel as DDP

from .._validation import check_int, check_seed
from ..data import make_multitask_data
from ..grads import flat_grad
from ..models import MultiHeadNet

__all__ = ["ddp_no_sync_default_worker", "three_losses"]


def three_losses(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    r"""Cross-entropy, MSE, and an auxiliary :math:`0.5\,\mathrm{L1}` term on the regression head.

    The losses of :func:`multiloss_helpers.distributed.single_process_gradients` with
    ``aux=True``, whose sum is the reference gradient.

    Args:
        model (nn.Module): returns ``{"cls": (N, C) logits, "reg": (N, 1)}``.
        batch (dict): ``"x"``, ``"y_cls"`` and ``"y_reg"``, as made by
            :func:`multiloss_helpers.make_multitask_data`.

    Returns:
        The three scalar losses, in that order.

    Example:
        >>> data = make_multitask_data(8, n_features=8, seed=0)
        >>> net = MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=0)
        >>> [tuple(loss.shape) for loss in three_losses(net, data)]
        [(), (), ()]
    """
    out = model(batch["x"])
    return (
        F.cross_entropy(out["cls"], batch["y_cls"]),
        F.mse_loss(out["reg"], batch["y_reg"]),
        0.5 * F.l1_loss(out["reg"], batch["y_reg"]),
    )


def ddp_no_sync_default_worker(
    rank: int, world_size: int, seed: int, n_samples: int
) -> tuple[Tensor, str]:
    r"""One iteration of ``no_sync`` per loss with DDP's defaults, then the next forward.

    Each of the three losses (:func:`three_losses`) gets its own forward and backward,
    the first two inside ``no_sync()``. The last one (the L1 term) does not reach the
    classification head, and without ``find_unused_parameters=True`` DDP waits for that
    head's gradients forever: the all-reduce of this iteration never runs, and no error is
    raised until the next forward pass. Run it with :func:`multiloss_helpers.launch`.

    Args:
        rank (int): this process's rank (given by ``launch``).
        world_size (int): the number of processes (given by ``launch``).
        seed (int): seeds the model (hidden layers of 32, 32) and the data.
        n_samples (int): the full batch, sharded ``rank::world_size``.

    Returns:
        ``(gradient, outcome)``: this rank's flattened gradient after the first iteration,
        and ``"no error"`` or the error that the second forward raised, on one line.
    """
    seed = check_seed(seed)
    n_samples = check_int(n_samples, "n_samples", minimum=world_size)
    model = MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=seed)
    data = make_multitask_data(n_samples, n_features=8, seed=seed)
    batch = {key: value[rank::world_size] for key, value in data.items()}
    ddp = DDP(model)  # find_unused_parameters=False, the default
    for i in range(3):
        with ddp.no_sync() if i < 2 else contextlib.nullcontext():
            three_losses(ddp, batch)[i].backward()
    gradient = flat_grad(model)
    try:
        ddp(batch["x"])  # the next iteration's forward
    except RuntimeError as error:
        return gradient, f"RuntimeError: {' '.join(str(error).split())}"
    return gradient, "no error"
