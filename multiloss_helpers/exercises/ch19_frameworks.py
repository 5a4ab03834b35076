r"""Checks for the exercises of chapter 19, *Multiple losses in Lightning and the Hugging Face
Trainer*.

The checks need neither Lightning nor transformers: they call the learner's function on a
small token tagger of their own, whose output has a ``.logits`` attribute as a
``transformers`` model's has.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._harness import (
    CheckResult,
    close,
    describe,
    expect,
    expect_close,
    expect_grads,
    gen,
    is_number,
    plain,
    run_check,
    verdict,
)

__all__ = [
    "check_accumulation_error",
    "check_compute_loss",
    "check_token_loss",
]

IGNORE = -100


class _Tagger(nn.Module):
    """A token tagger: an embedding and a linear layer; ``forward`` returns ``.logits``."""

    def __init__(self, seed: int, vocab: int = 12, classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, 6)
        self.out = nn.Linear(6, classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> SimpleNamespace:
        hidden = self.embed(input_ids) * attention_mask[..., None]
        return SimpleNamespace(logits=self.out(torch.tanh(hidden)))


def _tokens(seed: int, lengths: list[int], width: int = 7) -> dict[str, Tensor]:
    """A padded batch: token ids, the attention mask, and labels with -100 on padding."""
    g = gen(seed)
    ids = torch.randint(1, 12, (len(lengths), width), generator=g)
    mask = torch.arange(width) < torch.tensor(lengths)[:, None]
    labels = torch.where(mask, torch.randint(4, ids.shape, generator=g), IGNORE)
    return {"input_ids": ids, "attention_mask": mask.long(), "labels": labels}


def _sums(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The cross-entropy and the z-loss summed over the labelled tokens, and their count."""
    valid = labels != IGNORE
    tags = F.cross_entropy(logits[valid], labels[valid], reduction="sum")
    z = torch.logsumexp(logits[valid], dim=-1).pow(2).sum()
    return tags, z, valid.sum()


def _denominator_hint(got: Any, candidates: dict[str, Tensor]) -> str:
    """Which wrong denominator ``got`` used, named from ``candidates``, or ``""``."""
    if not isinstance(got, Tensor) or got.numel() != 1:
        return ""
    for hint, value in candidates.items():
        if close(got.detach().reshape(()), value.detach(), rtol=1e-4):
            return hint
    return ""


def check_token_loss(fn: Callable[[Tensor, Tensor, Any], Tensor]) -> CheckResult:
    r"""``fn(logits, labels, num_items_in_batch)``: the token cross-entropy summed over the
    labels other than -100, divided by ``num_items_in_batch`` (a tensor or an int), or by
    the micro-batch's own number of labelled tokens when it is ``None``."""

    def trials() -> None:
        g = gen(1)
        labels = _tokens(1, [2, 7, 4])["labels"]
        logits = torch.randn(*labels.shape, 4, generator=g, requires_grad=True)
        valid = labels != IGNORE
        total = F.cross_entropy(logits[valid], labels[valid], reduction="sum")
        for num_items in (torch.tensor(31), 19, None):
            count = valid.sum() if num_items is None else torch.as_tensor(num_items)
            want = total / count
            got = fn(logits, labels.clone(), num_items)
            wrong = {
                "your value is the mean over this micro-batch's own labelled tokens: under "
                "gradient accumulation, divide by num_items_in_batch, the count of the "
                "whole step": total / valid.sum(),
                "your value is not divided by any count": total,
                "you divide by the number of sequences, not of labelled tokens": total
                / len(labels),
                "your count includes the padded tokens (label -100)": total / labels.numel(),
            }
            wrong = {h: v for h, v in wrong.items() if not close(v.detach(), want.detach())}
            what = f"num_items_in_batch={num_items!r}"
            hint = _denominator_hint(got, wrong)
            expect(not hint, f"with {what}: {hint}")
            expect_close(got, want.detach(), f"with {what}", rtol=1e-5)
            (grad,) = torch.autograd.grad(want, logits, retain_graph=True)
            expect_grads(got, [logits], [grad], f"your loss with {what}")

    return run_check(
        "token_loss", fn, trials, "summed over the labelled tokens, divided by the step's count"
    )


def _compute_loss_trial(fn: Callable[..., Any], z_weight: float, num_items: Any) -> None:
    """One call of a ``compute_loss``: the total, its gradient, and ``self.terms``."""
    model, inputs = _Tagger(2), _tokens(2, [3, 7, 1, 5])
    owner = SimpleNamespace()
    logits = model(inputs["input_ids"], inputs["attention_mask"]).logits
    tags, z, count = _sums(logits, inputs["labels"])
    n = count if num_items is None else torch.as_tensor(num_items)
    want = tags / n + z_weight * z / n
    what = f"num_items_in_batch={num_items!r}"
    got = fn(owner, model, {k: v.clone() for k, v in inputs.items()}, num_items_in_batch=num_items)
    if num_items is not None and isinstance(got, Tensor):
        own = tags / count + z_weight * z / count
        expect(
            not close(got, own.detach(), rtol=1e-4),
            f"with {what}: your total ignores num_items_in_batch (divided by the micro-"
            "batch's own count)",
        )
    expect_close(got, want.detach(), f"with {what}, the total (is every term weighted as asked?)")
    params = list(model.parameters())
    expect_grads(got, params, torch.autograd.grad(want, params), f"your total with {what}")
    terms = getattr(owner, "terms", None)
    expect(
        isinstance(terms, Mapping) and set(terms) == {"tags", "z"},
        f"store the two terms in self.terms, a dict with the keys 'tags' and 'z'; got "
        f"{describe(terms) if not isinstance(terms, Mapping) else sorted(terms)}",
    )
    assert isinstance(terms, Mapping)
    for name, value in (("tags", tags / n), ("z", z / n)):
        stored = terms[name]
        expect(
            isinstance(stored, Tensor) and not stored.requires_grad,
            f"self.terms['{name}'] should be a tensor without a graph (logging must not keep "
            f"every step's graph alive), got {describe(stored)}"
            + (" that requires grad" if isinstance(stored, Tensor) else ""),
        )
        expect_close(stored, value.detach(), f"with {what}, self.terms['{name}']")


def check_compute_loss(fn: Callable[..., Any], *, z_weight: float = 1e-3) -> CheckResult:
    r"""``fn(self, model, inputs, return_outputs=False, num_items_in_batch=None)`` returns
    ``tags + z_weight * z`` (each term summed over the labelled tokens and divided by
    ``num_items_in_batch``, or by the micro-batch's own count when it is ``None``), or
    ``(total, outputs)`` when ``return_outputs`` is true, and stores each term, without
    its graph, in ``self.terms``."""

    def trials() -> None:
        for num_items in (None, torch.tensor(40), 23):
            _compute_loss_trial(fn, z_weight, num_items)
        model, inputs = _Tagger(3), _tokens(3, [4, 6])
        got = fn(SimpleNamespace(), model, inputs, return_outputs=True)
        expect(
            isinstance(got, tuple) and len(got) == 2,
            f"with return_outputs=True, return the pair (total, outputs), got {describe(got)}",
        )
        want = model(inputs["input_ids"], inputs["attention_mask"]).logits
        expect(
            close(getattr(got[1], "logits", None), want.detach()),
            "with return_outputs=True, the second item should be the model's outputs",
        )

    return run_check(
        "compute_loss", fn, trials, "the total, each term normalised and stored without a graph"
    )


def _tags_grad(model: nn.Module, rows: list[dict[str, Tensor]], denominator: Any) -> Tensor:
    """The gradient of the rows' tag cross-entropy summed over labelled tokens / denominator."""
    batch = {k: torch.stack([row[k] for row in rows]) for k in rows[0]}
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    tags, _, count = _sums(out.logits, batch["labels"])
    total = tags / (count if denominator is None else denominator)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(total, params, allow_unused=True)
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)]
    )


def _accumulation_errors(
    model: nn.Module, data: list[dict[str, Tensor]], splits: list[int], *, divide: bool = True
) -> dict[int, float]:
    """The relative error of the accumulated mean-per-micro-batch gradient, per split."""
    full = _tags_grad(model, data, None)
    errors = {}
    for k in splits:
        size = len(data) // k
        parts = [data[i : i + size] for i in range(0, len(data), size)]
        accumulated = torch.stack([_tags_grad(model, part, None) for part in parts]).sum(0)
        if divide:
            accumulated = accumulated / k
        errors[k] = float((accumulated - full).norm() / full.norm())
    return errors


def check_accumulation_error(
    errors: Any,
    model: nn.Module,
    data: list[dict[str, Tensor]],
    *,
    tolerance: float = 0.02,
) -> CheckResult:
    r"""Investigation: ``errors`` maps a number of micro-batches ``k`` (at least 1, 2, 4
    and 8) to the relative error ``‖accumulated − full‖ / ‖full‖`` of the gradient
    accumulated from each micro-batch's mean ``tags`` loss divided by ``k``, against the
    full batch's mean, for ``model`` on the sequences ``data``.

    The check reruns the experiment on a copy of ``model`` and compares each error within
    ``tolerance`` (relative), or within 1e-5 where the error is 0.
    """

    def trials() -> None:
        expect(
            isinstance(errors, Mapping) and {1, 2, 4, 8} <= set(errors),
            f"report a dict {{k: error}} for k = 1, 2, 4 and 8 micro-batches, got "
            f"{describe(errors) if not isinstance(errors, Mapping) else sorted(errors)}",
        )
        splits = sorted(errors)
        for k in splits:
            value = plain(errors[k])
            expect(
                is_number(value) and math.isfinite(value) and value >= 0,
                f"the error for k={k} should be one finite number >= 0, got {errors[k]!r}",
            )
        reference = copy.deepcopy(model)
        want = _accumulation_errors(reference, data, splits)
        undivided = _accumulation_errors(reference, data, splits, divide=False)
        got = {k: float(plain(errors[k])) for k in splits}
        expect(
            not all(v < 1e-5 for v in got.values()) or all(w < 1e-5 for w in want.values()),
            "your errors are all about 0: each micro-batch's loss should be its own mean, over "
            "its own labelled tokens (that is the mistake measured here)",
        )
        expect(
            not all(abs(got[k] - undivided[k]) <= tolerance * undivided[k] for k in splits),
            "your errors grow with k like the error of a sum of the micro-batch means: divide "
            "the accumulated gradient by the number of micro-batches",
        )
        for k in splits:
            expect(
                abs(got[k] - want[k]) <= tolerance * want[k] + 1e-5,
                f"for k={k} your error {got[k]:.4g} is not what the experiment gives: the "
                "relative error is the norm of the difference divided by the norm of the "
                "full-batch gradient",
            )

    return verdict("accumulation_error", trials, "the errors match the measured ones")
