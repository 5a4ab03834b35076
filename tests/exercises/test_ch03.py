"""Chapter 3's checks: right answers pass, typical wrong ones fail with their hint, a stub stops."""

from __future__ import annotations

import torch

from .cases import right, stub, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _reached(loss, model):
    reached, seen, stack = set(), set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, "variable"):
            reached.add(id(node.variable))
        stack.extend(n for n, _ in node.next_functions)
    return {name for name, p in model.named_parameters() if id(p) in reached}


def _reached_by_grad(loss, model):
    names, params = zip(*model.named_parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return {n for n, g in zip(names, grads) if g is not None}


CASES = [
    right("check_total_loss", lambda losses: sum(losses.values())),
    wrong(
        "check_total_loss",
        lambda losses: torch.tensor([v.item() for v in losses.values()]).sum(),
        "no graph",
    ),
    wrong(
        "check_total_loss",
        lambda losses: torch.stack(list(losses.values())).mean(),
        "your value is the mean, not the sum, of the per-element values",
    ),
    wrong(
        "check_total_loss",
        lambda losses: sum(v if i else v.detach() for i, v in enumerate(losses.values())),
        "does not reach",
    ),
    stub("check_total_loss"),
    right("check_reached_parameters", _reached),
    wrong(
        "check_reached_parameters",
        lambda loss, model: {n for n, _ in model.named_parameters()},
        "not reached",
    ),
    wrong(
        "check_reached_parameters",
        lambda loss, model: {n for n, _ in model.named_parameters() if "trunk" in n},
        "missing",
    ),
    wrong("check_reached_parameters", _reached_by_grad, "torch.autograd.grad"),
    wrong(
        "check_reached_parameters",
        lambda loss, model: {n for n, p in model.named_parameters() if p.requires_grad},
        "not reached",
    ),
    stub("check_reached_parameters"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
