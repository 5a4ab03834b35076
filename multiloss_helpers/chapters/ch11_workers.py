r"""Chapter 11's distributed workers: importable functions that ``mlh.launch`` runs.

Processes started with the ``spawn`` method import their worker by module path, so a
function defined in a notebook cannot be one; chapter 11's live here. Each builds the
same model and data from a seed, runs one way of combining losses under
``DistributedDataParallel`` on its shard, and returns its gradient (or what happened), so
the chapter can compare it with :func:`single_process_gradients`, the one-process
reference. They are the book's experiments, not library API: the launcher and
:func:`multiloss_helpers.ddp_mean` live in :mod:`multiloss_helpers.distributed`, which
also re-exports these names (``mlh.distributed.ddp_summed_loss_worker`` works).
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel as DDP

from .._validation import check_int, check_seed
from ..data import make_multitask_data
from ..distributed import ddp_mean
from ..grads import flat_grad
from ..models import MultiHeadNet

__all__ = [
    "ddp_accumulation_worker",
    "ddp_no_sync_default_worker",
    "ddp_no_sync_losses_worker",
    "ddp_separate_backward_worker",
    "ddp_silent_desync_worker",
    "ddp_summed_loss_worker",
    "ddp_weighted_loss_worker",
    "single_process_gradients",
    "single_process_weighted_gradients",
    "three_losses",
]


def _model_and_data(seed: int, n_samples: int) -> tuple[MultiHeadNet, dict[str, torch.Tensor]]:
    model = MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=seed)
    return model, make_multitask_data(n_samples, n_features=8, seed=seed)


def _two_losses(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(batch["x"])
    return F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"])


def _shard(data: dict[str, torch.Tensor], rank: int, world_size: int) -> dict[str, torch.Tensor]:
    return {key: value[rank::world_size] for key, value in data.items()}


def single_process_gradients(seed: int, n_samples: int, *, aux: bool = False) -> torch.Tensor:
    """The reference: the gradient of the summed loss on the full batch, one process.

    Args:
        seed: seeds the model and the data.
        n_samples: the full batch size.
        aux: add the auxiliary L1 term of ``ddp_silent_desync_worker``. Default: ``False``.

    Example:
        >>> single_process_gradients(0, 64).shape
        torch.Size([1476])
    """
    model, data = _model_and_data(seed, n_samples)
    losses = three_losses(model, data) if aux else _two_losses(model, data)
    torch.stack(list(losses)).sum().backward()
    return flat_grad(model)


def ddp_summed_loss_worker(
    rank: int, world_size: int, seed: int, n_samples: int, aux: bool = False
) -> torch.Tensor:
    """DDP, each rank on its shard, one backward of the summed loss; returns the gradient."""
    model, data = _model_and_data(seed, n_samples)
    ddp = DDP(model)
    batch = _shard(data, rank, world_size)
    losses = three_losses(ddp, batch) if aux else _two_losses(ddp, batch)
    torch.stack(list(losses)).sum().backward()
    return flat_grad(model)


def ddp_separate_backward_worker(rank: int, world_size: int, seed: int, n_samples: int) -> str:
    """DDP, one ``backward()`` per head's loss on one forward; returns what happened.

    The first loss (the classification head's) does not reach the regression
    head, so DDP's reduction is still open when the second backward marks the
    shared parameters ready again: it raises.
    """
    model, data = _model_and_data(seed, n_samples)
    ddp = DDP(model)
    loss_cls, loss_reg = _two_losses(ddp, _shard(data, rank, world_size))
    try:
        loss_cls.backward(retain_graph=True)
        loss_reg.backward()
    except RuntimeError as error:
        return f"RuntimeError: {' '.join(str(error).split())}"
    return "no error"


def ddp_silent_desync_worker(rank: int, world_size: int, seed: int, n_samples: int) -> Tensor:
    """DDP, a first backward that reaches every parameter, then a second one; no error.

    The first backward (both task losses) reaches every parameter, so DDP
    finishes its all-reduce there; the second backward (an auxiliary L1 term)
    adds its local gradient only, and the ranks' gradients silently differ
    (pytorch/pytorch#47260). Returns this rank's gradient.
    """
    model, data = _model_and_data(seed, n_samples)
    ddp = DDP(model)
    loss_cls, loss_reg, loss_aux = three_losses(ddp, _shard(data, rank, world_size))
    (loss_cls + loss_reg).backward(retain_graph=True)
    loss_aux.backward()
    return flat_grad(model)


def ddp_no_sync_losses_worker(rank: int, world_size: int, seed: int, n_samples: int) -> Tensor:
    """DDP, a forward and a backward per loss, ``no_sync`` on all but the last; the gradient.

    Each loss reaches only part of the model, so DDP needs
    ``find_unused_parameters=True``; the last backward all-reduces the gradients
    accumulated by all three.
    """
    model, data = _model_and_data(seed, n_samples)
    ddp = DDP(model, find_unused_parameters=True)
    batch = _shard(data, rank, world_size)
    for i in range(3):
        if i < 2:
            with ddp.no_sync():  # the forward must be inside no_sync too
                three_losses(ddp, batch)[i].backward()
        else:
            three_losses(ddp, batch)[i].backward()
    return flat_grad(model)


def ddp_accumulation_worker(
    rank: int, world_size: int, seed: int, n_samples: int, micro_batches: int
) -> torch.Tensor:
    """DDP gradient accumulation over micro-batches: ``no_sync`` on all but the last."""
    model, data = _model_and_data(seed, n_samples)
    ddp = DDP(model)
    shard = _shard(data, rank, world_size)
    for k in range(micro_batches):
        micro = {key: value[k::micro_batches] for key, value in shard.items()}
        if k < micro_batches - 1:
            with ddp.no_sync():  # accumulate locally, no all-reduce
                (torch.stack(_two_losses(ddp, micro)).sum() / micro_batches).backward()
        else:  # the last backward all-reduces the accumulated gradients
            (torch.stack(_two_losses(ddp, micro)).sum() / micro_batches).backward()
    return flat_grad(model)


# ----------------------------------------------------------- weighted, masked, unequal shards

_CLASS_WEIGHT = (1.0, 4.0, 0.5)
_CASES = ("weight", "ignore_index", "unequal")


def _weighted_case(seed: int, n_samples: int, case: str) -> tuple[MultiHeadNet, dict, dict]:
    """Model, data and cross-entropy options of one case; data["split"] marks the shards."""
    if case not in _CASES:
        raise ValueError(f"`case` must be one of {_CASES}, got {case!r}")
    model, data = _model_and_data(seed, n_samples)
    options: dict[str, Any] = {}
    if case == "weight":
        options["weight"] = torch.tensor(_CLASS_WEIGHT)
    if case == "ignore_index":  # padding: about a third of the targets are ignored
        generator = torch.Generator().manual_seed(seed)
        pad = torch.rand(n_samples, generator=generator) < 0.35
        data["y_cls"] = data["y_cls"].masked_fill(pad, -100)
    return model, data, options


def _weighted_shard(data: dict, rank: int, world_size: int, case: str) -> dict:
    if case != "unequal":
        return _shard(data, rank, world_size)
    n = len(data["x"])  # rank r gets a share proportional to r + 1
    bounds = [n * r * (r + 1) // (world_size * (world_size + 1)) for r in range(world_size + 1)]
    return {key: value[bounds[rank] : bounds[rank + 1]] for key, value in data.items()}


def _weighted_sums(model: Any, batch: dict, options: dict) -> tuple[Tensor, Tensor, Tensor]:
    """(summed loss, its denominator, the mean-reduced loss) of cross-entropy + MSE."""
    out = model(batch["x"])
    target = batch["y_cls"]
    valid = target != -100
    weight = options.get("weight")
    cls_den = weight[target[valid]].sum() if weight is not None else valid.sum().float()
    cls_sum = F.cross_entropy(out["cls"], target, reduction="sum", **options)
    reg_sum = F.mse_loss(out["reg"], batch["y_reg"], reduction="sum")
    mean = F.cross_entropy(out["cls"], target, **options) + F.mse_loss(out["reg"], batch["y_reg"])
    denominators = torch.stack([cls_den.float(), torch.tensor(float(len(target)))])
    return torch.stack([cls_sum, reg_sum]), denominators, mean


def single_process_weighted_gradients(seed: int, n_samples: int, case: str) -> Tensor:
    """The reference of ``ddp_weighted_loss_worker``: one process on the full batch.

    Example:
        >>> single_process_weighted_gradients(0, 64, "weight").shape
        torch.Size([1476])
    """
    model, data, options = _weighted_case(seed, n_samples, case)
    _weighted_sums(model, data, options)[2].backward()
    return flat_grad(model)


def ddp_weighted_loss_worker(
    rank: int, world_size: int, seed: int, n_samples: int, case: str, fixed: bool
) -> Tensor:
    r"""DDP with a weighted, masked or unequally sharded cross-entropy + MSE; returns the gradient.

    ``case`` is ``"weight"`` (class weights), ``"ignore_index"`` (about a third
    of the targets are padding) or ``"unequal"`` (rank r holds a share
    proportional to r + 1). With ``fixed=False`` each rank uses the usual
    mean-reduced losses, whose denominators are local; with ``fixed=True`` each
    loss is summed and divided by its global denominator with ``ddp_mean``.
    """
    model, data, options = _weighted_case(seed, n_samples, case)
    ddp = DDP(model)
    sums, denominators, mean = _weighted_sums(
        ddp, _weighted_shard(data, rank, world_size, case), options
    )
    if fixed:
        loss = ddp_mean(sums[0], denominators[0]) + ddp_mean(sums[1], denominators[1])
    else:
        loss = mean
    loss.backward()
    return flat_grad(model)


def three_losses(model: torch.nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    r"""Cross-entropy, MSE, and an auxiliary :math:`0.5\,\mathrm{L1}` term on the regression head.

    The losses of :func:`single_process_gradients` with
    ``aux=True``, whose sum is the reference gradient.

    Args:
        model (torch.nn.Module): returns ``{"cls": (N, C) logits, "reg": (N, 1)}``.
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
