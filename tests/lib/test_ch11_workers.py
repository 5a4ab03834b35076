"""Chapter 11's worker for no_sync per loss with DDP's default flags."""

import pytest
import torch

import multiloss_helpers as mlh
from multiloss_helpers.chapters import ch11_workers as ddp_unused


def test_three_losses_sum_to_the_reference_gradient():
    net = mlh.MultiHeadNet(8, {"cls": 3, "reg": 1}, hidden=(32, 32), seed=2)
    data = mlh.make_multitask_data(64, n_features=8, seed=2)
    torch.stack(ddp_unused.three_losses(net, data)).sum().backward()
    reference = mlh.distributed.single_process_gradients(2, 64, aux=True)
    torch.testing.assert_close(mlh.flat_grad(net), reference)


def test_without_find_unused_parameters_nothing_is_reduced_and_the_next_forward_raises():
    (grad_0, outcome_0), (grad_1, outcome_1) = mlh.launch(
        ddp_unused.ddp_no_sync_default_worker, 0, 64, nprocs=2, timeout=120
    )
    reference = mlh.distributed.single_process_gradients(0, 64, aux=True)
    # each rank keeps its local gradient: apart, and off the full-batch gradient
    assert (grad_0 - grad_1).norm() > 0.1 * reference.norm()
    torch.testing.assert_close((grad_0 + grad_1) / 2, reference)
    for outcome in (outcome_0, outcome_1):
        assert outcome.startswith("RuntimeError: Expected to have finished reduction")


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((-1, 64), ValueError, "seed"),
        ((0, 1), ValueError, "n_samples"),
        ((0, 64.0), TypeError, "n_samples"),
    ],
)
def test_the_worker_refuses_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        ddp_unused.ddp_no_sync_default_worker(0, 2, *args)
