"""launch (gloo CPU processes) and DDP with several losses, against one process on the full batch.

Starting a process costs seconds (it imports torch), so the DDP checks share one launch.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import types

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

import multiloss_helpers as mlh
from multiloss_helpers import distributed
from multiloss_helpers.distributed import WorkerError

# ---------------------------------------------------------------- workers (importable: top level)


def _return_rank(rank, world_size):
    return rank


def _cpp_log_level(rank, world_size):
    return os.environ.get("TORCH_CPP_LOG_LEVEL")


def _hang_unless_rank_zero(rank, world_size):
    if rank != 0:
        time.sleep(600)
    return rank


def _raise_before_a_collective(rank, world_size):
    if rank == world_size - 1:
        raise ValueError("the last rank is broken")
    tensor = torch.ones(3)
    dist.all_reduce(tensor)  # its peer is gone: the connection is reset
    return tensor


def _exit_then_kill(rank, world_size):
    if rank == 0:
        dist.barrier()  # every connection is up
        os._exit(3)
    try:
        dist.barrier()
        dist.barrier()  # rank 0 is gone: the connection is reset
    finally:
        os.kill(os.getpid(), signal.SIGKILL)


def _unpicklable_result(rank, world_size):
    return threading.Lock()


def _no_children_left():
    return not multiprocessing.active_children()


# ---------------------------------------------------------------- DDP with several losses


@pytest.fixture(scope="module")
def ddp_results():
    """Every DDP measurement of chapter 11 in one launch of two processes."""
    calls = [
        (distributed.ddp_summed_loss_worker, (0, 64)),
        (distributed.ddp_separate_backward_worker, (0, 64)),
        (distributed.ddp_accumulation_worker, (0, 64, 4)),
        (distributed.ddp_silent_desync_worker, (0, 64)),
        (distributed.ddp_summed_loss_worker, (0, 64, True)),
        (distributed.ddp_no_sync_losses_worker, (0, 64)),
    ]
    for case in ("weight", "ignore_index", "unequal"):
        calls += [(distributed.ddp_weighted_loss_worker, (0, 16, case, fixed)) for fixed in (0, 1)]
    calls.append((_return_rank, ()))
    ranks = mlh.launch(distributed.run_workers, *calls, nprocs=2, timeout=120)
    assert _no_children_left()
    assert [results[-1] for results in ranks] == [0, 1]  # results come back in rank order
    return [list(per_call) for per_call in zip(*ranks)]  # one [rank 0, rank 1] pair per call


def test_summed_loss_under_ddp_equals_one_process_on_the_full_batch(ddp_results):
    reference = distributed.single_process_gradients(0, 64)
    grads = ddp_results[0]
    torch.testing.assert_close(grads[0], grads[1])  # every rank holds the averaged gradient
    torch.testing.assert_close(grads[0], reference)
    torch.testing.assert_close(ddp_results[2][0], reference)  # accumulation with no_sync


def test_separate_backward_raises_when_the_first_loss_misses_parameters(ddp_results):
    assert all("marked as ready twice" in outcome for outcome in ddp_results[1])


def test_separate_backward_silently_desynchronises_when_the_first_loss_reaches_all(
    ddp_results,
):
    grads = ddp_results[3]
    assert (grads[0] - grads[1]).abs().max() > 1e-3  # no error, different gradients
    reference = distributed.single_process_gradients(0, 64, aux=True)
    for summed_or_no_sync in (ddp_results[4], ddp_results[5]):
        torch.testing.assert_close(summed_or_no_sync[0], summed_or_no_sync[1])
        torch.testing.assert_close(summed_or_no_sync[0], reference)


@pytest.mark.parametrize("index, case", [(6, "weight"), (8, "ignore_index"), (10, "unequal")])
def test_weighted_masked_and_unequal_means_need_the_global_denominator(ddp_results, index, case):
    reference = distributed.single_process_weighted_gradients(0, 16, case)
    wrong, fixed = ddp_results[index], ddp_results[index + 1]
    assert ((wrong[0] - reference).norm() / reference.norm()) > 1e-2
    torch.testing.assert_close(fixed[0], fixed[1])
    torch.testing.assert_close(fixed[0], reference)


# ---------------------------------------------------------------- ddp_mean in one process


def test_ddp_mean_without_a_process_group_is_the_weighted_mean():
    logits, target = torch.randn(7, 3), torch.tensor([0, 1, 2, 2, -100, 1, 0])
    weight = torch.tensor([1.0, 2.0, 0.5])
    total = F.cross_entropy(logits, target, weight=weight, reduction="sum")
    loss = mlh.distributed.ddp_mean(total, weight[target[target != -100]].sum())
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, weight=weight))
    half = torch.tensor(3.0, dtype=torch.bfloat16)
    assert mlh.distributed.ddp_mean(half, 2).dtype == torch.bfloat16


def test_ddp_mean_refuses_bad_input():
    with pytest.raises(TypeError, match=r"`loss_sum` must be a torch\.Tensor"):
        mlh.distributed.ddp_mean(3.0, 2)
    with pytest.raises(ValueError, match="`loss_sum` must be a scalar"):
        mlh.distributed.ddp_mean(torch.ones(2), 2)
    with pytest.raises(TypeError, match="`denominator` must be a tensor or a number"):
        mlh.distributed.ddp_mean(torch.tensor(1.0), "2")
    with pytest.raises(ValueError, match="`denominator` must be a scalar"):
        mlh.distributed.ddp_mean(torch.tensor(1.0), torch.ones(2))
    with pytest.raises(ValueError, match="must be finite and > 0, got 0"):
        mlh.distributed.ddp_mean(torch.tensor(1.0), torch.tensor(0))


@pytest.mark.parametrize(
    ("loss_sum", "denominator", "error", "match"),
    [
        # an integer loss was truncated (5 / 2 gave 2), a bool one returned True
        (torch.tensor(5), 2, TypeError, "`loss_sum` must be a floating-point tensor"),
        (torch.tensor(True), 2, TypeError, "`loss_sum` must be a floating-point tensor"),
        # an infinite denominator gave 0; bool and complex ones were cast silently
        (torch.tensor(5.0), math.inf, ValueError, "must be finite and > 0, got inf"),
        (torch.tensor(5.0), math.nan, ValueError, "must be finite and > 0, got nan"),
        (torch.tensor(5.0), torch.tensor(True), TypeError, "`denominator` must be a real"),
        (torch.tensor(5.0), torch.tensor(1 + 1j), TypeError, "`denominator` must be a real"),
    ],
)
def test_ddp_mean_refuses_silent_casts(loss_sum, denominator, error, match):
    with pytest.raises(error, match=match):
        mlh.distributed.ddp_mean(loss_sum, denominator)


# ---------------------------------------------------------------- launch: arguments


def test_workers_start_without_cpp_warnings_and_the_caller_keeps_its_environment(monkeypatch):
    """C++ warnings (DDP's reducer, with a timestamp) would reach the notebook's stderr."""
    monkeypatch.delenv("TORCH_CPP_LOG_LEVEL", raising=False)
    assert mlh.launch(_cpp_log_level, nprocs=2, timeout=120) == ["ERROR", "ERROR"]
    assert "TORCH_CPP_LOG_LEVEL" not in os.environ
    monkeypatch.setenv("TORCH_CPP_LOG_LEVEL", "INFO")  # the caller's choice is kept
    assert mlh.launch(_cpp_log_level, nprocs=1, timeout=120) == ["INFO"]


def test_launch_refuses_bad_arguments(monkeypatch):
    def local(rank, world_size):
        return rank

    with pytest.raises(TypeError, match="`worker` must be a callable"):
        mlh.launch(3)
    with pytest.raises(TypeError, match="`worker` must be picklable"):
        mlh.launch(local)
    with pytest.raises(TypeError, match="`worker` must be picklable"):
        mlh.launch(lambda rank, world_size: rank)
    with pytest.raises(TypeError, match="`args` must be picklable"):
        mlh.launch(_return_rank, threading.Lock())
    with pytest.raises(TypeError, match="`nprocs` must be an int"):
        mlh.launch(_return_rank, nprocs=2.0)
    with pytest.raises(ValueError, match="`nprocs` must be >= 1"):
        mlh.launch(_return_rank, nprocs=0)
    with pytest.raises(TypeError, match="`timeout` must be a positive number of seconds"):
        mlh.launch(_return_rank, timeout="10")
    with pytest.raises(ValueError, match="`timeout` must be > 0"):
        mlh.launch(_return_rank, timeout=0)
    assert _no_children_left()


def test_launch_refuses_a_worker_defined_in_a_notebook(monkeypatch):
    notebook = types.ModuleType("__main__")  # like Jupyter's: no file to re-import
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    monkeypatch.setattr(_return_rank, "__module__", "__main__")
    notebook._return_rank = _return_rank
    with pytest.raises(TypeError, match="defined in this notebook"):
        mlh.launch(_return_rank)


# ---------------------------------------------------------------- launch: failures


def test_timeout_names_unfinished_ranks_and_leaves_no_process():
    with pytest.raises(TimeoutError, match=r"worker\(s\) \[(0, )?1\] of 2 had not returned"):
        mlh.launch(_hang_unless_rank_zero, timeout=1.5)
    assert _no_children_left()


def test_the_failing_worker_is_reported_not_its_peer():
    with pytest.raises(WorkerError, match="worker 1 of 2 raised ValueError") as caught:
        mlh.launch(_raise_before_a_collective)
    error = caught.value
    assert isinstance(error, RuntimeError) and error.rank == 1
    assert error.error_type == "ValueError" and error.exitcode is None
    assert "the last rank is broken" in error.worker_traceback
    assert "_raise_before_a_collective" in str(error)  # the traceback text is in the message
    assert isinstance(error.__cause__, ValueError)
    assert _no_children_left()


def test_crashes_and_signals_are_worker_errors():
    with pytest.raises(WorkerError, match="worker 0 of 2 exited with code 3 before") as caught:
        mlh.launch(_exit_then_kill)
    error = caught.value
    assert error.rank == 0 and error.exitcode == 3 and error.error_type is None
    assert "then worker 1 was killed by signal SIGKILL" in str(error)
    assert _no_children_left()


def test_an_unpicklable_result_is_a_clear_error():
    with pytest.raises(WorkerError, match="return value could not be pickled"):
        mlh.launch(_unpicklable_result, nprocs=1)


def test_keyboard_interrupt_leaves_no_worker_alive():
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            mlh.launch(_hang_unless_rank_zero, nprocs=2)
    finally:
        timer.cancel()
    assert _no_children_left()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rank": -1}, ValueError, "`rank` must be >= 0, got -1"),
        ({"rank": 1.0}, TypeError, "`rank` must be an int, got float"),
        ({"rank": 0, "exitcode": "3"}, TypeError, "`exitcode` must be an int, got str"),
        ({"rank": 0, "error_type": ValueError}, TypeError, "`error_type` must be a str or None"),
        ({"rank": 0, "worker_traceback": None}, TypeError, "`worker_traceback` must be a str"),
    ],
)
def test_worker_error_checks_its_fields(kwargs, error, match):
    with pytest.raises(error, match=match):
        WorkerError("worker failed", **kwargs)
    with pytest.raises(TypeError, match="`message` must be a str, got int"):
        WorkerError(3, rank=0)


# Issue 20 regression: ddp_mean with subnormal or beyond-float32 denominators (D10)
def test_ddp_mean_with_a_subnormal_denominator():
    out = mlh.ddp_mean(torch.tensor(1e-3), 1e-39)
    assert out.item() == pytest.approx(1e36, rel=1e-6)
    assert mlh.ddp_mean(torch.tensor(0.0), 1e-39).item() == 0.0


# Issue 20 regression: ddp_mean with subnormal or beyond-float32 denominators (D10)
def test_ddp_mean_with_a_denominator_beyond_float32():
    out = mlh.ddp_mean(torch.tensor(1e30), 1e39)
    assert out.item() == pytest.approx(1e-9, rel=1e-6)
    loss = torch.tensor(2.0, requires_grad=True)
    mlh.ddp_mean(loss, torch.tensor(4.0)).backward()
    assert loss.grad.item() == 0.25
