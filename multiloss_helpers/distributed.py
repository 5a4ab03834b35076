r"""Several CPU processes with torch.distributed (gloo), launchable from a notebook.

Workers started with the ``spawn`` method must be importable, so a function
defined in a notebook cannot be one. ``launch`` runs any importable worker on N
local processes and returns what each one returned, in rank order;
``run_workers`` runs several in one launch. The workers of chapter 11 live in
:mod:`multiloss_helpers.chapters.ch11_workers` (also reachable here, e.g.
``mlh.distributed.ddp_summed_loss_worker``). ``ddp_mean`` turns a rank's summed loss
into the loss whose DDP gradient is the gradient of the global (weighted or
masked) mean.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
import pickletools
import re
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing import connection
from numbers import Real
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ._validation import check_float, check_int, check_tensor, describe

__all__ = ["WorkerError", "ddp_mean", "launch"]

#: Seconds the other workers get to report after the first failure, before they are ended.
_GRACE_S = 1.0
#: Seconds a worker that has returned its result gets to exit before it is ended.
_EXIT_S = 5.0
# What a worker's collective raises when a peer died or left: a consequence, not a cause.
_PEER_LOST = re.compile(
    r"connection (closed|reset) by peer|broken pipe|econnreset|epipe|connection refused"
    r"|connectfullmesh failed|socket closed|read error|unexpected eof",
    re.IGNORECASE,
)


class WorkerError(RuntimeError):
    r"""A worker started by ``launch`` raised, crashed or was killed by a signal.

    It is a ``RuntimeError``, so code written against earlier versions still
    catches it. When the worker raised, the original exception (if it could be
    pickled) is chained as ``__cause__``, and its traceback text is in the message.

    Attributes:
        rank: the rank of the worker that failed first (its own failure, not a
            peer's lost connection).
        exitcode: the process's exit code when it crashed (negative: the number
            of the signal that killed it), or ``None`` when the worker raised.
        error_type: the name of the exception type the worker raised, or ``None``.
        worker_traceback: the worker's traceback text (empty for a crash).

    Example:
        >>> error = WorkerError("worker 1 of 2 exited with code 3", rank=1, exitcode=3)
        >>> isinstance(error, RuntimeError), error.rank, error.exitcode
        (True, 1, 3)
    """

    def __init__(
        self,
        message: str,
        *,
        rank: int,
        exitcode: int | None = None,
        error_type: str | None = None,
        worker_traceback: str = "",
    ) -> None:
        if not isinstance(message, str):
            raise TypeError(f"`message` must be a str, got {describe(message)}")
        rank = check_int(rank, "rank", minimum=0)
        if exitcode is not None:
            exitcode = check_int(exitcode, "exitcode")
        if error_type is not None and not isinstance(error_type, str):
            raise TypeError(f"`error_type` must be a str or None, got {describe(error_type)}")
        if not isinstance(worker_traceback, str):
            raise TypeError(f"`worker_traceback` must be a str, got {describe(worker_traceback)}")
        super().__init__(message)
        self.rank = rank
        self.exitcode = exitcode
        self.error_type = error_type
        self.worker_traceback = worker_traceback

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_worker_error,
            (str(self), self.rank, self.exitcode, self.error_type, self.worker_traceback),
        )


def _rebuild_worker_error(
    message: str, rank: int, exitcode: int | None, error_type: str | None, text: str
) -> WorkerError:
    return WorkerError(
        message, rank=rank, exitcode=exitcode, error_type=error_type, worker_traceback=text
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _main_is_importable() -> bool:
    """Whether a spawned process can import ``__main__`` (a script, not a notebook)."""
    return getattr(sys.modules.get("__main__"), "__file__", None) is not None


def _check_picklable(value: Any, name: str) -> None:
    """Check that ``value`` pickles, and refers to nothing a spawned process cannot import."""
    try:
        data = pickle.dumps(value, protocol=2)  # protocol 2 names every global as text
    except Exception as error:
        raise TypeError(
            f"`{name}` must be picklable (a top-level function of an importable module, and "
            f"picklable arguments), got {describe(value)}: {error}"
        ) from None
    if _main_is_importable():
        return
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL" and str(arg).split(" ")[0] == "__main__":
            raise TypeError(
                f"`{name}` must be importable by a new process, but it uses "
                f"`{str(arg).split(' ')[1]}`, defined in this notebook or interactive session: "
                "move it into a module (a .py file) and import it"
            )


# --------------------------------------------------------------------------- worker side


def _exit_with_parent() -> None:
    """End this worker if the process that launched it dies (no orphan left behind)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _error_record(error: BaseException) -> dict[str, Any]:
    original: bytes | None = None
    try:
        data = pickle.dumps(error)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
        original = data
    except Exception:
        pass
    message = str(error)
    return {
        "type": type(error).__name__,
        "message": message,
        "traceback": traceback.format_exc(),
        "time": time.time(),
        "peer_lost": isinstance(error, RuntimeError) and bool(_PEER_LOST.search(message)),
        "original": original,
    }


def _entry(
    rank: int, world_size: int, port: int, worker: Callable, args: tuple, sender: Any
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop, and ends us
    _exit_with_parent()
    torch.set_num_threads(1)
    payload: tuple[str, Any]
    try:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
        )
        result = worker(rank, world_size, *args)
        try:
            payload = ("ok", pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception as error:
            raise TypeError(
                f"the worker's return value could not be pickled ({describe(result)}): {error}"
            ) from error
    except BaseException as error:  # SystemExit too: report everything to the parent
        payload = ("error", _error_record(error))
    sender.send_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))
    sender.close()
    if dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- parent side


def _check_launch_arguments(worker: Any, args: tuple, nprocs: Any, timeout: Any) -> float | None:
    if not callable(worker):
        raise TypeError(f"`worker` must be a callable, got {describe(worker)}")
    _check_picklable(worker, "worker")
    _check_picklable(args, "args")
    check_int(nprocs, "nprocs", minimum=1)
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, Real):
        raise TypeError(
            f"`timeout` must be a positive number of seconds or None, got {describe(timeout)}"
        )
    return check_float(timeout, "timeout", minimum=0.0, open_minimum=True)


def _crash_record(exitcode: int | None) -> dict[str, Any]:
    if exitcode is not None and exitcode < 0:
        how = f"was killed by signal {signal.Signals(-exitcode).name}"
    else:
        how = f"exited with code {exitcode}"
    return {
        "type": None,
        "message": how,
        "traceback": "",
        "time": time.time(),
        "peer_lost": False,
        "original": None,
        "exitcode": exitcode,
    }


def _worker_error(failures: dict[int, dict[str, Any]], nprocs: int) -> WorkerError:
    """The error to report: the earliest failure that is not a lost connection to a peer."""
    causes = {rank: f for rank, f in failures.items() if not f["peer_lost"]} or failures
    rank = min(causes, key=lambda r: causes[r]["time"])
    failure = causes[rank]
    if failure["type"] is None:
        message = f"worker {rank} of {nprocs} {failure['message']} before returning a result"
    else:
        message = (
            f"worker {rank} of {nprocs} raised {failure['type']}: {failure['message']}\n\n"
            f"Traceback of worker {rank}:\n{failure['traceback'].rstrip()}"
        )
    for other in sorted(set(failures) - {rank}):
        what = failures[other]
        summary = " ".join(f"{what['type'] or ''} {what['message']}".split())
        cause = "lost its connection to a peer: " if what["peer_lost"] else ""
        message += f"\nthen worker {other} {cause}{summary[:200]}"
    error = WorkerError(
        message,
        rank=rank,
        exitcode=failure.get("exitcode"),
        error_type=failure["type"],
        worker_traceback=failure["traceback"],
    )
    if failure["original"] is not None:
        error.__cause__ = pickle.loads(failure["original"])
    return error


def _collect(
    processes: list[Any], receivers: list[Any], deadline: float | None
) -> tuple[dict[int, bytes], dict[int, dict[str, Any]]]:
    """Read one message per worker, until the deadline or a grace period after a failure."""
    results: dict[int, bytes] = {}
    failures: dict[int, dict[str, Any]] = {}
    waiting = set(range(len(processes)))
    grace_end: float | None = None
    while waiting:
        now = time.monotonic()
        limits = [t for t in (deadline, grace_end) if t is not None]
        if limits and now >= min(limits):
            return results, failures
        ready = connection.wait(
            [receivers[r] for r in waiting] + [processes[r].sentinel for r in waiting],
            timeout=min(limits) - now if limits else None,
        )
        for rank in sorted(waiting):
            receiver, process = receivers[rank], processes[rank]
            if receiver not in ready and process.sentinel not in ready:
                continue
            if receiver.poll():
                try:
                    status, payload = pickle.loads(receiver.recv_bytes())
                except EOFError:  # died without a word
                    status, payload = "crash", None
            elif not process.is_alive():
                status, payload = "crash", None
            else:
                continue
            waiting.discard(rank)
            if status == "ok":
                results[rank] = payload
                continue
            if status == "crash":
                process.join(timeout=1.0)
                payload = _crash_record(process.exitcode)
            failures[rank] = payload
            if grace_end is None:
                grace_end = time.monotonic() + _GRACE_S
    return results, failures


def _stop(processes: list[Any]) -> None:
    """Terminate, then kill, every worker still alive, and reap them all."""
    processes = [process for process in processes if process.pid is not None]  # started
    for process in processes:
        if process.is_alive():
            process.terminate()
    end = time.monotonic() + 2.0
    for process in processes:
        process.join(timeout=max(0.0, end - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()


#: Environment variables the workers start with, unless the caller's environment sets them:
#: C++ log messages below error level (c10's, printed straight to stderr with a timestamp,
#: e.g. warnings of DDP's reducer) are dropped; errors are still printed.
_WORKER_ENV = {"TORCH_CPP_LOG_LEVEL": "ERROR"}


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Set :data:`_WORKER_ENV` (where unset) while workers start; restore it afterwards."""
    added = {k: v for k, v in _WORKER_ENV.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def launch(
    worker: Callable[..., Any], *args: Any, nprocs: int = 2, timeout: float | None = None
) -> list[Any]:
    r"""Run ``worker(rank, world_size, *args)`` on ``nprocs`` local CPU processes.

    Each process is started with ``spawn``, uses one intra-op thread and joins a
    gloo process group on 127.0.0.1 (a free port is chosen), so
    ``torch.distributed`` and ``DistributedDataParallel`` work inside the worker.
    Return values are pickled back to the caller (tensors are copied).

    No process outlives the call: when it returns, raises, times out, or is
    interrupted (``KeyboardInterrupt``, Ctrl-C), every worker still running is
    terminated (then killed) and reaped; a worker whose launcher dies ends itself.

    Args:
        worker: an importable callable (a function at the top level of a module,
            not one defined in a notebook); the first two arguments it receives
            are its rank and the world size.
        *args: further arguments, which must be picklable.
        nprocs: the number of processes. Default: ``2``.
        timeout: seconds for the whole call, process start-up included (each
            process imports torch: allow a few seconds), or ``None`` to wait
            forever. Default: ``None``.

    Returns:
        The workers' return values, ordered by rank.

    Raises:
        TypeError: ``worker`` is not callable or not importable by a new
            process, ``args`` cannot be pickled, or ``nprocs``/``timeout`` has
            the wrong type.
        ValueError: ``nprocs < 1`` or ``timeout <= 0``.
        WorkerError: a worker raised, crashed (e.g. ``os._exit``) or was killed by
            a signal. The error names the worker that failed first with its own
            error, not a peer that then lost its connection to it, and carries
            its traceback text.
        TimeoutError: the call took longer than ``timeout``; the message names
            the ranks that had not returned.

    Example:
        >>> from multiloss_helpers.chapters.ch11_workers import ddp_summed_loss_worker
        >>> launch(ddp_summed_loss_worker, 0, 64, nprocs=2)[0].shape
        torch.Size([1476])
    """
    timeout = _check_launch_arguments(worker, args, nprocs, timeout)
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    context = torch.multiprocessing.get_context("spawn")
    port = _free_port()
    processes: list[Any] = []
    receivers: list[Any] = []
    try:
        with _worker_environment():
            for rank in range(nprocs):
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=_entry,
                    args=(rank, nprocs, port, worker, args, sender),
                    name=f"mlh-launch-{rank}",
                )
                processes.append(process)  # before start(): an interrupt inside it is cleaned up
                receivers.append(receiver)
                process.start()
                sender.close()  # the worker holds the only writing end: EOF when it dies
        results, failures = _collect(processes, receivers, deadline)
        if failures:
            raise _worker_error(failures, nprocs)
        unfinished = sorted(set(range(nprocs)) - set(results))
        if unfinished:
            raise TimeoutError(
                f"launch timed out after {timeout:g} s: worker(s) {unfinished} of {nprocs} "
                "had not returned; every worker was terminated"
            )
        end = time.monotonic() + _EXIT_S
        for process in processes:  # a worker that returned gets a moment to exit
            process.join(timeout=max(0.0, end - time.monotonic()))
        return [pickle.loads(results[rank]) for rank in range(nprocs)]
    finally:
        _stop(processes)
        for receiver in receivers:
            receiver.close()


def run_workers(rank: int, world_size: int, *calls: tuple[Callable[..., Any], tuple]) -> list:
    r"""A worker that runs several workers one after the other in one process group.

    Starting processes costs seconds (each imports torch), so a notebook that
    needs several distributed measurements launches once and runs them all:
    ``launch(run_workers, (worker_a, args_a), (worker_b, args_b))`` returns one
    list per rank, holding ``worker_a``'s result, then ``worker_b``'s.

    Args:
        rank: this process's rank (given by ``launch``).
        world_size: the number of processes (given by ``launch``).
        *calls: pairs ``(worker, args)``; each runs as ``worker(rank, world_size, *args)``.

    Returns:
        The list of the workers' return values, in the order of ``calls``.

    Example:
        >>> run_workers(1, 2, (max, ()), (pow, ()))  # max(1, 2) and pow(1, 2)
        [2, 1]
    """
    out = []
    for call in calls:
        if not (isinstance(call, tuple) and len(call) == 2 and callable(call[0])):
            raise TypeError(f"each call must be a pair (worker, args), got {describe(call)}")
        worker, args = call
        out.append(worker(rank, world_size, *args))
    return out


# --------------------------------------------------------------------------- ddp_mean


def ddp_mean(loss_sum: Tensor, denominator: Tensor | float, *, group: Any = None) -> Tensor:
    r"""The loss whose DDP-averaged gradient is the gradient of the global mean.

    A mean-reduced loss divides by a *local* denominator: the number of samples,
    of non-ignored targets, or the sum of the class weights of this rank's
    targets (``F.cross_entropy(weight=...)``). DDP then averages the ranks'
    gradients, which equals the full-batch gradient only when every rank has the
    same denominator. The fix: reduce with ``"sum"`` and divide by the global
    denominator,

    .. math::
        L_r = W \, \frac{S_r}{\sum_{q=1}^{W} d_q}, \qquad
        \frac{1}{W} \sum_{r=1}^{W} \nabla L_r = \nabla \frac{\sum_r S_r}{\sum_r d_r},

    where :math:`S_r` is rank :math:`r`'s summed loss, :math:`d_r` its
    denominator and :math:`W` the world size. The denominators are all-reduced
    (one small collective, so every rank must call it); they are treated as
    constants (no gradient flows into them). Without an initialised process
    group, :math:`W = 1` and the result is ``loss_sum / denominator``. For
    gradient accumulation, pass the denominator of all the micro-batches of the
    step (known before the first backward) and do not divide by their number.

    Args:
        loss_sum: this rank's loss with ``reduction="sum"``, a scalar.
        denominator: this rank's denominator (count or weight sum), a scalar
            tensor or a number; may be 0 on some ranks, not on all.
        group: the process group. Default: ``None`` (the default group).

    Returns:
        A scalar of ``loss_sum``'s dtype to call ``backward()`` on.

    Raises:
        TypeError: ``loss_sum`` is not a floating-point tensor, or ``denominator`` is
            neither a real tensor nor a number.
        ValueError: ``loss_sum`` or ``denominator`` is not a scalar, or the global
            denominator is not finite and positive (checked for CPU tensors only, to avoid a
            host synchronisation on accelerators).

    Example:
        >>> import torch.nn.functional as F
        >>> logits, target = torch.randn(6, 3), torch.tensor([0, 1, 2, 2, -100, 1])
        >>> weight = torch.tensor([1.0, 2.0, 0.5])
        >>> total = F.cross_entropy(logits, target, weight=weight, reduction="sum")
        >>> valid = target != -100
        >>> loss = ddp_mean(total, weight[target[valid]].sum())
        >>> torch.allclose(loss, F.cross_entropy(logits, target, weight=weight))
        True
    """
    check_tensor(loss_sum, "loss_sum")
    if not loss_sum.is_floating_point():
        raise TypeError(f"`loss_sum` must be a floating-point tensor, got {loss_sum.dtype}")
    if loss_sum.dim() != 0:
        raise ValueError(f"`loss_sum` must be a scalar, got shape {tuple(loss_sum.shape)}")
    if isinstance(denominator, Tensor):
        if denominator.dtype == torch.bool or denominator.is_complex():
            raise TypeError(f"`denominator` must be a real number, got {denominator.dtype}")
        if denominator.dim() != 0:
            raise ValueError(
                f"`denominator` must be a scalar, got shape {tuple(denominator.shape)}"
            )
    elif isinstance(denominator, bool) or not isinstance(denominator, Real):
        raise TypeError(f"`denominator` must be a tensor or a number, got {describe(denominator)}")
    # the denominator and the division in float64 (float32 on MPS, which has no float64):
    # a denominator beyond float32's range (1e39) or its reciprocal (1e-39) stays finite
    dtype = torch.float32 if loss_sum.device.type == "mps" else torch.float64
    if isinstance(denominator, Tensor):
        total = denominator.detach().to(device=loss_sum.device, dtype=dtype).clone()
    else:  # a Python number straight to float64, not through float32
        try:
            value = float(denominator)
        except OverflowError:  # an int beyond float64: refused below as not finite
            value = math.inf
        total = torch.tensor(value, dtype=dtype, device=loss_sum.device)
    world_size = 1
    if dist.is_available() and dist.is_initialized():
        world_size = dist.get_world_size(group)
        dist.all_reduce(total, group=group)
    if total.device.type == "cpu" and not bool((total > 0) & total.isfinite()):
        raise ValueError(
            f"the denominator summed over the {world_size} rank(s) must be finite and > 0, got "
            f"{total.item():g}"
        )
    # divide first: world_size / total overflows for a subnormal total (1 / 1e-39)
    return (loss_sum.to(dtype) / total * world_size).to(loss_sum.dtype)


def __getattr__(name: str) -> Any:
    r"""Chapter 11's workers (``ch11_workers.__all__``), imported on first use (their module
    imports this one), so that ``mlh.distributed.<worker>`` keeps working."""
    if not name.startswith("_"):
        from .chapters import ch11_workers

        if name in ch11_workers.__all__:
            return getattr(ch11_workers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
