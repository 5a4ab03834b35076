"""DDP with several losses on 2 gloo CPU processes, against one process on the full batch."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh
from multiloss_helpers import distributed


def test_summed_loss_under_ddp_equals_one_process_on_the_full_batch():
    reference = distributed.single_process_gradients(0, 64)
    grads = distributed.launch(distributed.ddp_summed_loss_worker, 0, 64, nprocs=2)
    assert len(grads) == 2
    torch.testing.assert_close(grads[0], grads[1])  # every rank holds the averaged gradient
    torch.testing.assert_close(grads[0], reference)


def test_separate_backward_breaks_ddp_and_accumulation_with_no_sync_works():
    outcomes = distributed.launch(distributed.ddp_separate_backward_worker, 0, 64, nprocs=2)
    assert all("marked as ready twice" in outcome for outcome in outcomes)
    reference = distributed.single_process_gradients(0, 64)
    grads = distributed.launch(distributed.ddp_accumulation_worker, 0, 64, 4, nprocs=2)
    torch.testing.assert_close(grads[0], reference)


def test_launch_refuses_unimportable_workers():
    def local(rank, world_size):
        return rank

    with pytest.raises(ValueError, match="must be importable"):
        mlh.launch(local)
    with pytest.raises(ValueError, match="`nprocs` must be >= 1"):
        mlh.launch(distributed.ddp_summed_loss_worker, 0, 64, nprocs=0)
