"""Chapter 11's checks: right answers pass, typical wrong ones fail with their hint, a stub
stops."""

from __future__ import annotations

import torch

from .cases import right, stub, table_tests, two_losses, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _autocast(model, batch):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return two_losses(model, batch)


def _autocast_no_grad(model, batch):
    with torch.no_grad():
        return _autocast(model, batch)


CASES = [
    right("check_shard", lambda data, r, w: {k: v[r::w] for k, v in data.items()}),
    wrong(
        "check_shard",
        lambda data, r, w: {k: v[: len(v) // w] for k, v in data.items()},
        "overlap",
    ),
    wrong(
        "check_shard",
        lambda data, r, w: {"x": data["x"][r::w], "i": data["i"][::w]},
        "aligned",
    ),
    wrong("check_shard", lambda data, r, w: {"i": data["i"][r::w]}, "every key"),
    stub("check_shard"),
    right("check_autocast_losses", _autocast),
    wrong("check_autocast_losses", two_losses, "autocast on"),
    wrong(
        "check_autocast_losses",
        lambda m, b: tuple(v.to(torch.bfloat16) for v in _autocast(m, b)),
        "float32",
    ),
    wrong("check_autocast_losses", _autocast_no_grad, "no graph"),
    wrong("check_autocast_losses", lambda m, b: _autocast(m, b)[0], "pair"),
    stub("check_autocast_losses"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
