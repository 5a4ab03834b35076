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


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5"])
def test_bad_environment_variable(monkeypatch, raw):
    monkeypatch.setenv("MLH_SEED", raw)
    with pytest.raises(ValueError, match="MLH_SEED must be a non-negative integer"):
        mlh.seed_everything()


def test_bad_argument():
    with pytest.raises(TypeError, match="`seed` must be an int"):
        mlh.seed_everything(1.0)
    with pytest.raises(ValueError, match="`seed` must be >= 0"):
        mlh.seed_everything(-3)
