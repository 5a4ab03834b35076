"""Shared fixtures: every test is seeded, runs on the CPU and draws off-screen."""

from __future__ import annotations

import random

import matplotlib
import pytest
import torch

matplotlib.use("Agg")


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
