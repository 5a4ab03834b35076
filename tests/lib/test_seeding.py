"""seed_everything: one seed, from the argument or MLH_SEED, for random, NumPy and torch."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

import multiloss_helpers as mlh


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_same_seed_same_draws_in_every_library():
    assert mlh.seed_everything(5) == 5
    first = _draws()
    mlh.seed_everything(5)
    assert _draws() == first
    mlh.seed_everything(6)
    assert _draws() != first


def test_reads_the_environment_variable(monkeypatch):
    monkeypatch.setenv("MLH_SEED", "7")
    assert mlh.seed_everything() == 7
    assert torch.initial_seed() == 7
    monkeypatch.delenv("MLH_SEED")
    assert mlh.seed_everything() == 0


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5", str(2**64)])
def test_bad_environment_variable(monkeypatch, raw):
    monkeypatch.setenv("MLH_SEED", raw)
    with pytest.raises(ValueError, match="MLH_SEED must be a non-negative integer"):
        mlh.seed_everything()


def test_bad_argument():
    with pytest.raises(TypeError, match="`seed` must be an int"):
        mlh.seed_everything(1.0)
    with pytest.raises(ValueError, match="`seed` must be >= 0"):
        mlh.seed_everything(-3)


_DROPOUT_RUN = """
import torch, torch.nn.functional as F
import multiloss_helpers as mlh
torch.set_num_threads(1)

def dropout_run(seed_fit):
    data = mlh.make_multitask_data(64, n_features=4, seed=0)
    net = mlh.MultiHeadNet(4, {"reg": 1}, hidden=(8,), dropout=0.5, seed=0)
    loss_fn = lambda m, b: F.mse_loss(m(b["x"])["reg"], b["y_reg"])
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    history = mlh.fit(net, loss_fn, mlh.BatchLoader(data, 16, seed=0), opt, epochs=2,
                      progress=False, seed=seed_fit)
    return history.steps()
"""


def test_dropout_runs_are_the_same_in_another_process():
    """torch seeds its global generator per process: seed_everything or fit(seed=) fix it."""
    import os
    import subprocess
    import sys

    namespace: dict = {}
    exec(_DROPOUT_RUN, namespace)
    mlh.seed_everything(3)
    here_global = namespace["dropout_run"](None)
    here_fit = namespace["dropout_run"](11)
    script = (
        _DROPOUT_RUN
        + "mlh.seed_everything(3)\nprint(repr(dropout_run(None)))\n"
        + "print(repr(dropout_run(11)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()
    assert eval(out[0]) == here_global
    assert eval(out[1]) == here_fit
    assert here_global != here_fit


@pytest.mark.parametrize("seed", [2**64, 2**70])
def test_seed_beyond_torchs_range(seed):
    # torch raised "Overflow when unpacking long long", naming no argument
    with pytest.raises(ValueError, match=r"`seed` must be < 2\*\*64"):
        mlh.seed_everything(seed)
    assert mlh.seed_everything(2**64 - 1) == 2**64 - 1
