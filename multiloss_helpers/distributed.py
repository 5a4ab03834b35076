"""Several CPU processes with torch.distributed (gloo), launchable from a notebook.

Workers started with the ``spawn`` method must be importable, so a function
defined in a notebook cannot be one. The workers the book uses live here;
``launch`` runs any importable worker on N local processes and returns what
each one returned, in rank order.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from ._validation import check_int, describe
from .data import make_multitask_data
from .models import MultiHeadNet

__all__ = [
    "ddp_accumulation_worker",
    "ddp_separate_backward_worker",
    "ddp_summed_loss_worker",
    "launch",
    "single_process_gradients",
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _TensorByValue:
    """A tensor sent through a queue as a NumPy copy, not as shared memory.

    Shared-memory tensors are rebuilt from file descriptors that disappear when
    the worker exits, so results are copied instead.
    """

    def __init__(self, tensor: torch.Tensor) -> None:
        self.array = tensor.detach().cpu().numpy().copy()

    def restore(self) -> torch.Tensor:
        return torch.from_numpy(self.array)


def _entry(
    rank: int, world_size: int, port: int, worker: Callable, args: tuple, queue: Any
) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        result = worker(rank, world_size, *args)
        if isinstance(result, torch.Tensor):
            result = _TensorByValue(result)
        queue.put((rank, result))
    except Exception as exc:  # report it to the parent instead of hanging it
        queue.put((rank, RuntimeError(f"{type(exc).__name__}: {exc}")))
    finally:
        dist.destroy_process_group()


def launch(worker: Callable[..., Any], *args: Any, nprocs: int = 2) -> list[Any]:
    """Run ``worker(rank, world_size, *args)`` on ``nprocs`` local CPU processes.

    Each process joins a gloo process group on 127.0.0.1 (a free port is chosen),
    so ``torch.distributed`` and ``DistributedDataParallel`` work inside the
    worker. Return values travel back through a queue (tensors are shared).

    Args:
        worker: an importable (module-level) function; the first two arguments
            it receives are its rank and the world size.
        *args: further arguments, which must be picklable.
        nprocs: the number of processes.

    Returns:
        The workers' return values, ordered by rank.

    Raises:
        RuntimeError: when a worker raised; the message names the rank and
            carries the worker's error.

    Example:
        >>> launch(ddp_summed_loss_worker, 0, 64, nprocs=2)[0].shape
        torch.Size([1476])
    """
    if not callable(worker):
        raise TypeError(f"`worker` must be a callable, got {describe(worker)}")
    if getattr(worker, "__module__", "__main__") == "__main__" or "<locals>" in getattr(
        worker, "__qualname__", ""
    ):
        raise ValueError(
            "`worker` must be importable (defined at the top level of a module): spawned "
            "processes cannot see functions defined in a notebook or inside another function"
        )
    nprocs = check_int(nprocs, "nprocs", minimum=1)
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    port = _free_port()
    processes = mp.start_processes(
        _entry,
        args=(nprocs, port, worker, args, queue),
        nprocs=nprocs,
        join=False,
        start_method="spawn",
    )
    results: dict[int, Any] = {}
    finished = False
    while not finished:  # drain the queue while waiting, so a large result cannot block
        finished = processes.join(timeout=0.05)
        while not queue.empty():
            rank, value = queue.get()
            results[rank] = value
    for rank in sorted(results):
        if isinstance(results[rank], Exception):
            raise RuntimeError(f"worker {rank} raised {results[rank]}")
    missing = sorted(set(range(nprocs)) - set(results))
    if missing:
        raise RuntimeError(f"workers {missing} exited without a result")
    return [
        value.restore() if isinstance(value, _TensorByValue) else value
        for _, value in sorted(results.items())
    ]


def _model_and_data(seed: int, n_samples: int) -> tuple[MultiHeadNet, dict[str, torch.Tensor]]:
    model = MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=seed)
    return model, make_multitask_data(n_samples, n_features=8, seed=seed)


def _two_losses(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    out = model(batch["x"])
    return F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"])


def _shard(data: dict[str, torch.Tensor], rank: int, world_size: int) -> dict[str, torch.Tensor]:
    return {key: value[rank::world_size] for key, value in data.items()}


def _flat_grad(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def single_process_gradients(seed: int, n_samples: int) -> torch.Tensor:
    """The reference: the gradient of the summed loss on the full batch, one process.

    Example:
        >>> single_process_gradients(0, 64).shape
        torch.Size([1476])
    """
    model, data = _model_and_data(seed, n_samples)
    sum(_two_losses(model, data)).backward()
    return _flat_grad(model)


def ddp_summed_loss_worker(rank: int, world_size: int, seed: int, n_samples: int) -> torch.Tensor:
    """DDP, each rank on its shard, one backward of the summed loss; returns the gradient."""
    model, data = _model_and_data(seed, n_samples)
    ddp = DDP(model)
    sum(_two_losses(ddp, _shard(data, rank, world_size))).backward()
    return _flat_grad(model)


def ddp_separate_backward_worker(rank: int, world_size: int, seed: int, n_samples: int) -> str:
    """DDP with a separate ``backward()`` per loss on one forward; returns what happened."""
    model, data = _model_and_data(seed, n_samples)
    ddp = DDP(model)
    loss_cls, loss_reg = _two_losses(ddp, _shard(data, rank, world_size))
    try:
        loss_cls.backward(retain_graph=True)
        loss_reg.backward()
    except RuntimeError as error:
        return f"RuntimeError: {' '.join(str(error).split())}"
    return "no error"


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
                (sum(_two_losses(ddp, micro)) / micro_batches).backward()
        else:  # the last backward all-reduces the accumulated gradients
            (sum(_two_losses(ddp, micro)) / micro_batches).backward()
    return _flat_grad(model)
