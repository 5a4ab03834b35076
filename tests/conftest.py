"""Shared fixtures: every test is seeded, runs on the CPU and draws off-screen."""

from __future__ import annotations

import random

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

# The suite's models are tiny: one intra-op thread is faster than two, and does not
# stall when another process holds a core (two threads wait for each other on every op).
torch.set_num_threads(1)


def _devices() -> list[str]:
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


@pytest.fixture(params=_devices())
def device(request) -> torch.device:
    """The CPU always, and CUDA or MPS when present."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Seed Python and torch before each test so that every run is the same."""
    random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test opened, so memory stays flat across the suite."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
