"""Chapter 19's checks: right answers pass, typical wrong ones fail with their hint, a stub
stops. The checks need neither Lightning nor transformers, and neither do these tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multiloss_helpers.exercises import ch19_frameworks as ch19

from .cases import STUB, finding, right, stub, stub_answer, table_tests, wrong

GIVEAWAYS = ("reduction=", "valid.sum()", "labels != -100", ".detach()")
Z = 1e-3


# ------------------------------------------------------------------ token loss
def _token_loss(logits, labels, num_items_in_batch, denominator=None, keep_padding=False):
    valid = labels != -100
    total = F.cross_entropy(logits[valid], labels[valid], reduction="sum")
    if denominator == "own":
        return total / valid.sum()
    if denominator == "sequences":
        return total / len(labels)
    if denominator == "none":
        return total
    if num_items_in_batch is None:
        return total / (labels.numel() if keep_padding else valid.sum())
    return total / num_items_in_batch


def _token_loss_default_mean(logits, labels, num_items_in_batch):
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten())  # ignore_index=-100


def _token_loss_no_graph(logits, labels, num_items_in_batch):
    return _token_loss(logits.detach(), labels, num_items_in_batch)


# ------------------------------------------------------------------ compute_loss
def _compute_loss(
    self, model, inputs, return_outputs=False, num_items_in_batch=None, *, mistake=""
):
    outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    labels = inputs["labels"]
    valid = labels != -100
    logits = outputs.logits[valid]
    n = valid.sum() if num_items_in_batch is None or mistake == "own" else num_items_in_batch
    terms = {
        "tags": F.cross_entropy(logits, labels[valid], reduction="sum") / n,
        "z": torch.logsumexp(logits, dim=-1).pow(2).sum() / n,
    }
    keep = mistake == "graph"
    self.terms = {k: v if keep else v.detach() for k, v in terms.items()}
    if mistake == "names":
        self.terms = {"loss": terms["tags"].detach(), "z_loss": terms["z"].detach()}
    total = terms["tags"] + (1.0 if mistake == "unweighted" else Z) * terms["z"]
    if mistake == "outputs":
        return total
    return (total, outputs) if return_outputs else total


def _compute_loss_with(mistake):
    def answer(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        return _compute_loss(
            self, model, inputs, return_outputs, num_items_in_batch, mistake=mistake
        )

    return answer


# ------------------------------------------------------------------ the investigation
def _setup():
    batch = ch19._tokens(5, [2, 3, 2, 3, 6, 7, 5, 7])
    rows = [{k: v[i] for k, v in batch.items()} for i in range(8)]
    return ch19._Tagger(5), rows


def _errors(divide=True, normalise_by_step=False):
    def measure(model, rows):
        full = ch19._tags_grad(model, rows, None)
        errors = {}
        for k in (1, 2, 4, 8):
            size = len(rows) // k
            parts = [rows[i : i + size] for i in range(0, len(rows), size)]
            total = sum(int((p["labels"] != -100).sum()) for p in rows)
            step = total if normalise_by_step else None
            accumulated = sum(ch19._tags_grad(model, part, step) for part in parts)
            if divide and not normalise_by_step:
                accumulated = accumulated / k
            errors[k] = float((accumulated - full).norm() / full.norm())
        return errors

    return measure


def _finding(measure):
    def call(check):
        model, rows = _setup()
        return check(measure(model, rows), model, rows)

    return call


CASES = [
    right("check_token_loss", _token_loss),
    wrong(
        "check_token_loss",
        lambda z, y, n: _token_loss(z, y, n, denominator="own"),
        "own labelled tokens",
    ),
    wrong("check_token_loss", _token_loss_default_mean, "own labelled tokens"),
    wrong(
        "check_token_loss",
        lambda z, y, n: _token_loss(z, y, n, denominator="none"),
        "not divided by any count",
    ),
    wrong(
        "check_token_loss",
        lambda z, y, n: _token_loss(z, y, n, denominator="sequences"),
        "number of sequences",
    ),
    wrong(
        "check_token_loss",
        lambda z, y, n: _token_loss(z, y, n, keep_padding=True),
        "includes the padded tokens",
    ),
    wrong("check_token_loss", _token_loss_no_graph, "has no graph"),
    stub("check_token_loss"),
    right("check_compute_loss", _compute_loss),
    wrong("check_compute_loss", _compute_loss_with("own"), "ignores num_items_in_batch"),
    wrong("check_compute_loss", _compute_loss_with("graph"), "without a graph"),
    wrong("check_compute_loss", _compute_loss_with("unweighted"), "weighted as asked"),
    wrong("check_compute_loss", _compute_loss_with("outputs"), "return the pair"),
    wrong("check_compute_loss", _compute_loss_with("names"), "the keys 'tags' and 'z'"),
    stub("check_compute_loss"),
    finding("check_accumulation_error", _finding(_errors()), label="measured"),
    finding(
        "check_accumulation_error",
        _finding(_errors(divide=False)),
        "divide the accumulated gradient",
        label="not divided",
    ),
    finding(
        "check_accumulation_error",
        _finding(_errors(normalise_by_step=True)),
        "all about 0",
        label="the right normalisation",
    ),
    finding(
        "check_accumulation_error",
        _finding(lambda m, r: {k: v * 2 for k, v in _errors()(m, r).items()}),
        "is not what the experiment gives",
        label="twice",
    ),
    finding(
        "check_accumulation_error",
        _finding(lambda m, r: {k: _errors()(m, r)[k] for k in (1, 2, 4)}),
        "for k = 1, 2, 4 and 8",
        label="missing k",
    ),
    finding(
        "check_accumulation_error",
        _finding(lambda m, r: stub_answer),
        "report a dict {k: error}",
        label="stub",
        kind=STUB,
    ),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)


def test_the_checks_model_stands_for_a_transformers_model():
    """The check's tagger returns ``.logits`` of shape (batch, tokens, classes), as the
    chapter's BERT does, and padded tokens carry the label -100."""
    model, rows = _setup()
    batch = ch19._tokens(5, [2, 7])
    logits = model(batch["input_ids"], batch["attention_mask"]).logits
    assert logits.shape == (2, 7, 4)
    assert (batch["labels"][0, 2:] == -100).all() and (batch["labels"][1] != -100).all()
    errors = _errors()(model, rows)
    assert errors[1] < 1e-6 < 0.05 < errors[2]  # unequal counts: the mean per micro-batch is off
