"""The frameworks chapter downloads nothing: its code runs with every network connection refused.

Chapter 19 builds its Lightning and Hugging Face models from code and configurations with
random weights, and sets the libraries' offline switches before importing them. This test
runs every code cell of the notebook in a fresh Python process (IPython's shell, as a
kernel would, without the kernel's own sockets) after replacing the ways a Python program
opens a connection (``socket.socket.connect`` and ``connect_ex``, ``socket.create_connection``,
``socket.getaddrinfo``) with a function that records the attempt and raises. It fails when a
cell fails (other than one tagged ``raises-exception``) or when any connection was
attempted, and it checks that the guard itself catches a connection (so that it cannot
pass by guarding nothing). It takes about as long as executing the chapter (most of it
importing the two frameworks); it is skipped where Lightning or transformers is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "book" / "19_frameworks.ipynb"

RUNNER = r"""
import json, socket, sys

attempts = []


def refuse(*args, **kwargs):
    attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args)[:200])
    raise OSError("network access is refused in this test")


socket.socket.connect = lambda self, *a, **k: refuse(self, *a, **k)
socket.socket.connect_ex = lambda self, *a, **k: refuse(self, *a, **k)
socket.create_connection = refuse
socket.getaddrinfo = refuse

from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
failed = []
for index, cell in enumerate(json.load(open(sys.argv[1]))["cells"]):
    if cell["cell_type"] != "code":
        continue
    result = shell.run_cell("".join(cell["source"]), silent=True)
    expected = "raises-exception" in cell["metadata"].get("tags", [])
    if result.success == expected:
        failed.append((index, "did not raise" if expected else repr(result.error_in_exec)))
found_before_probe = list(attempts)
try:
    socket.create_connection(("huggingface.co", 443), timeout=1)
except OSError:
    pass
print(json.dumps({"failed": failed, "attempts": found_before_probe, "probe": attempts[-1:]}))
"""


@pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("lightning", "transformers")),
    reason="the frameworks chapter needs lightning and transformers (requirements.txt)",
)
def test_the_frameworks_chapter_attempts_no_network_connection():
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    for switch in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(switch, None)  # the notebook must set them itself
    run = subprocess.run(
        [sys.executable, "-c", RUNNER, str(NOTEBOOK)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["probe"], "the guard did not catch a connection: the test guards nothing"
    assert not report["failed"], f"cells that failed (index, error): {report['failed']}"
    assert not report["attempts"], f"network connections attempted: {report['attempts']}"
