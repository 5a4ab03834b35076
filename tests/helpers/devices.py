"""The devices the tests run on: the CPU always, CUDA and MPS when present.

Import the fixture into a test module (``from helpers.devices import device_fixture``): it is
registered under the name ``device``, so tests take a ``device`` argument without shadowing
the import; a module-level fixture takes precedence over one of that name in conftest.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

DEVICES = (
    ["cpu"]
    + (["cuda"] if torch.cuda.is_available() else [])
    + (["mps"] if torch.backends.mps.is_available() else [])
)


@pytest.fixture(params=DEVICES, name="device")
def device_fixture(request: pytest.FixtureRequest) -> torch.device:
    """Each available device in turn."""
    return torch.device(request.param)


@contextlib.contextmanager
def no_host_sync(device: torch.device) -> Iterator[None]:
    """On CUDA, make any synchronising call inside the block an error; elsewhere a no-op."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def dtypes_for(device: torch.device) -> list[torch.dtype]:
    """float32, float64, bfloat16 and float16, less those the device lacks (MPS: float64)."""
    found = [torch.float32, torch.bfloat16, torch.float16]
    if device.type != "mps":
        found.insert(1, torch.float64)
    return found
