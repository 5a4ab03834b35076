"""`make`'s choice of torch index (scripts/torch_index.py): the CPU index on Linux without
a GPU when it answers, the regular registry otherwise."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from helpers.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
torch_index = load_script("torch_index")


@pytest.fixture
def local_index(tmp_path):
    """A package index on localhost with a torch page, like download.pytorch.org/whl/cpu."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<a>torch-2.13.0+cpu.whl</a>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_linux_without_gpu_uses_a_reachable_cpu_index(local_index):
    assert torch_index.reachable(local_index, timeout=5)
    index, reason = torch_index.choose("Linux", gpu=False, url=local_index)
    assert index == local_index and "CPU-only" in reason


def test_an_unreachable_index_falls_back_to_the_registry(local_index):
    dead = local_index.rsplit(":", 1)[0] + ":9"  # the discard port: nothing listens
    assert not torch_index.reachable(dead, timeout=2)
    index, reason = torch_index.choose("Linux", gpu=False, url=dead)
    assert index == "" and "falling back" in reason


@pytest.mark.parametrize(
    ("system", "gpu"), [("Darwin", False), ("Windows", False), ("Linux", True)]
)
def test_other_machines_use_the_registry_without_probing(system, gpu):
    def probe(url):
        raise AssertionError("no probe is needed here")

    index, _ = torch_index.choose(system, gpu=gpu, probe=probe)
    assert index == ""


def test_the_environment_overrides_the_choice():
    assert torch_index.choose("Linux", False, override="none")[0] == ""
    assert torch_index.choose("Darwin", False, override="http://mirror/cpu")[0] == (
        "http://mirror/cpu"
    )
