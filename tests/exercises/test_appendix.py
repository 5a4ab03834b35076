"""The appendix's checks: right answers pass, typical wrong ones fail with their hint, a stub
stops."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .cases import right, stub, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")

CASES = [
    right("check_stack_losses", lambda losses: torch.stack(losses)),
    wrong(
        "check_stack_losses",
        lambda losses: torch.tensor([loss.item() for loss in losses]),
        "graph is cut",
    ),
    wrong("check_stack_losses", lambda losses: torch.stack(losses).sum(), "shape (3,)"),
    wrong(
        "check_stack_losses",
        lambda losses: torch.stack([loss.detach() for loss in losses]),
        "graph is cut",
    ),
    stub("check_stack_losses"),
    right("check_regression_loss", lambda p, t: F.mse_loss(p.squeeze(1), t)),
    wrong("check_regression_loss", lambda p, t: F.mse_loss(p, t), "warns"),
    wrong("check_regression_loss", lambda p, t: F.mse_loss(p.squeeze(), t), "N=1 your loss warns"),
    wrong("check_regression_loss", lambda p, t: ((p - t) ** 2).mean(), "matching entries"),
    wrong(
        "check_regression_loss",
        lambda p, t: ((p.squeeze(1) - t) ** 2).sum(),
        "matching entries",
    ),
    stub("check_regression_loss"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
