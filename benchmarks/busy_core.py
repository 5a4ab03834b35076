"""Every chapter timed with one core kept busy by another process (`make bench-busy`).

A laptop or a Colab machine is rarely idle. With PyTorch's default intra-op threads, a
tiny model's every operation waits for the thread that shares a core with the busy
process; the chapters call ``torch.set_num_threads(1)`` so that they do not. This script
starts its own busy process (one Python loop spinning on one core), executes each
chapter notebook from start to end with nbclient, the kernel included, and prints the
seconds per chapter with the core busy and, unless ``--busy-only``, idle first, with
the busy/idle ratio. Goal: every chapter <= 25 s with a core busy.

    python benchmarks/busy_core.py                      # every chapter, idle then busy
    python benchmarks/busy_core.py --busy-only 03 04    # some chapters, busy only

The load average of the machine is printed too: on a shared machine "idle" means only
that this script starts no busy process of its own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
GOAL_SECONDS = 25.0


def _spin() -> None:
    """Keep one core busy until terminated."""
    x = 0
    while True:
        x = (x + 1) % 1_000_003


def chapters(selected: list[str]) -> list[Path]:
    """The chapter notebooks (``NN_*.ipynb``), or those whose name starts with a selector."""
    found = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
    if selected:
        found = [p for p in found if any(p.name.startswith(s) for s in selected)]
        if not found:
            raise SystemExit(f"chapters: expected prefixes of book/NN_*.ipynb, got {selected}")
    return found


def execute(path: Path, timeout: int) -> float:
    """Seconds to execute ``path`` with a fresh kernel (start-up included)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def run_all(paths: list[Path], timeout: int, label: str) -> dict[str, float]:
    times = {}
    for path in paths:
        try:
            times[path.name] = execute(path, timeout)
        except Exception as error:  # a failing chapter is reported, the others still run
            print(f"  {label:<5} {path.name}: FAILED ({type(error).__name__})", flush=True)
            times[path.name] = float("nan")
            continue
        print(f"  {label:<5} {path.name}: {times[path.name]:6.1f} s", flush=True)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="name prefixes, e.g. 03 04 (default: all)")
    parser.add_argument("--busy-only", action="store_true", help="skip the idle pass")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = chapters(args.chapters)
    print(f"{len(paths)} chapters, {os.cpu_count()} CPUs, load average {os.getloadavg()}")

    idle: dict[str, float] = {}
    if not args.busy_only:
        print("idle (no busy process of ours):", flush=True)
        idle = run_all(paths, args.timeout, "idle")

    busy_process = multiprocessing.Process(target=_spin, daemon=True)
    busy_process.start()
    try:
        time.sleep(0.5)
        print(f"busy (pid {busy_process.pid} spinning on one core):", flush=True)
        busy = run_all(paths, args.timeout, "busy")
    finally:
        busy_process.terminate()
        busy_process.join(timeout=5)
        if busy_process.is_alive():
            busy_process.kill()

    print(f"\nload average after: {os.getloadavg()}")
    print(f"{'chapter':<32} {'idle s':>7} {'busy s':>7} {'busy/idle':>9}")
    for name, seconds in busy.items():
        base = idle.get(name, float("nan"))
        print(f"{name:<32} {base:7.1f} {seconds:7.1f} {seconds / base:9.2f}")
    slow = [n for n, s in busy.items() if not s <= GOAL_SECONDS]
    print(
        f"max with a busy core: {max(busy.values()):.1f} s (goal <= {GOAL_SECONDS:.0f} s); "
        + (f"over the goal or failed: {slow}" if slow else "every chapter meets the goal")
    )
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
