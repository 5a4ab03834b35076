"""Chapter 5's checks: right answers pass, typical wrong ones fail with their hint, a stub stops.

The wrong answers include one summed backward for "separate backward", and accumulation
that divides by k when the micro-batches differ in size.
"""

from __future__ import annotations

from .cases import right, stub, table_tests, two_losses, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _separate(model, batch):
    cls, reg = two_losses(model, batch)
    cls.backward(retain_graph=True)
    reg.backward()


def _one_summed_backward(model, batch):
    cls, reg = two_losses(model, batch)
    (cls + reg).backward()


def _accumulate(weighting):
    def fn(model, batch, k):
        n = len(batch["x"])
        for j in range(k):
            micro = {key: v[j::k] for key, v in batch.items()}
            total = sum(two_losses(model, micro))
            scale = {"size": len(micro["x"]) / n, "k": 1 / k, "none": 1.0}[weighting]
            (total * scale).backward()

    return fn


def _accumulate_zeroing(model, batch, k):
    model.zero_grad()
    _accumulate("size")(model, batch, k)


def _accumulate_one_pass(model, batch, k):
    sum(two_losses(model, batch)).backward()


CASES = [
    right("check_separate_backward_step", _separate),
    wrong("check_separate_backward_step", _one_summed_backward, "ran 1 backward"),
    wrong(
        "check_separate_backward_step",
        lambda model, batch: two_losses(model, batch)[1].backward(),
        "ran 1 backward",
    ),
    wrong(
        "check_separate_backward_step",
        lambda model, batch: (_separate(model, batch), _separate(model, batch)),
        "ran 4",
    ),
    stub("check_separate_backward_step"),
    right("check_accumulated_gradients", _accumulate("size")),
    wrong("check_accumulated_gradients", _accumulate("k"), "differ in size"),
    wrong("check_accumulated_gradients", _accumulate("none"), "full-batch"),
    wrong("check_accumulated_gradients", _accumulate_zeroing, "do not zero"),
    wrong("check_accumulated_gradients", _accumulate_one_pass, "one backward per micro-batch"),
    stub("check_accumulated_gradients"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
