"""Print the package index that `make` should install torch from, or nothing.

On Linux without an NVIDIA GPU, PyPI's torch wheel pulls several GB of CUDA packages
that cannot be used. PyTorch publishes CPU-only wheels at ``CPU_INDEX``; this script
prints that URL when it applies and the index answers within a few seconds, and prints
nothing otherwise (macOS and Windows wheels on PyPI are already CPU-only; a machine with
an NVIDIA GPU wants the CUDA build; an offline machine or a private mirror falls back to
the regular registry). The reason goes to stderr.

``TORCH_INDEX`` in the environment overrides the choice: a URL to use, or ``none``.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import urllib.request
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def has_nvidia_gpu() -> bool:
    """An NVIDIA driver is loaded or its tool is installed."""
    return Path("/proc/driver/nvidia").exists() or shutil.which("nvidia-smi") is not None


def reachable(url: str, timeout: float = 5.0) -> bool:
    """The index answers an HTTP request for its torch page within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/torch/", timeout=timeout) as answer:
            return 200 <= answer.status < 400
    except (OSError, ValueError):
        return False


def choose(
    system: str, gpu: bool, url: str = CPU_INDEX, probe=reachable, override: str | None = None
) -> tuple[str, str]:
    """Return ``(index, reason)``; ``index`` is ``""`` for the regular registry."""
    if override:
        if override.lower() == "none":
            return "", "TORCH_INDEX=none: the regular registry"
        return override, f"TORCH_INDEX={override}"
    if system != "Linux":
        return "", f"{system}: the regular torch wheel is already CPU-only or native"
    if gpu:
        return "", "an NVIDIA GPU is present: the regular (CUDA) torch wheel"
    if not probe(url):
        return "", f"{url} is not reachable: falling back to the regular registry"
    return url, f"Linux without a GPU: the CPU-only torch from {url}"


def main() -> None:
    index, reason = choose(
        platform.system(), has_nvidia_gpu(), override=os.environ.get("TORCH_INDEX")
    )
    print(f"torch index: {reason}", file=sys.stderr)
    print(index)


if __name__ == "__main__":
    main()
