"""Chapter 6's checks: right answers pass, typical wrong ones fail with their hint, a stub stops."""

from __future__ import annotations

from .cases import right, stub, table_tests, wrong

GIVEAWAYS = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")


def _ema(values, decay):
    out = []
    for v in values:
        out.append(v if not out else decay * out[-1] + (1 - decay) * v)
    return out


CASES = [
    right("check_linear_warmup", lambda step, warmup: min(step / warmup, 1.0)),
    wrong("check_linear_warmup", lambda step, warmup: step / warmup, "with warmup"),
    wrong("check_linear_warmup", lambda step, warmup: min((step + 1) / warmup, 1.0), "step 0"),
    wrong("check_linear_warmup", lambda step, warmup: min(step // warmup, 1), "with warmup=4"),
    stub("check_linear_warmup"),
    right("check_ema", _ema),
    wrong(
        "check_ema",
        lambda values, decay: [sum(values[: i + 1]) / (i + 1) for i in range(len(values))],
        "decay",
    ),
    wrong("check_ema", lambda values, decay: _ema([0.0, *values], decay)[1:], "first average"),
    wrong("check_ema", lambda values, decay: _ema(values, 1 - decay), "decay=0.0"),
    wrong("check_ema", 3, "should be a function", "not a function"),
    stub("check_ema"),
]

test_right_answer, test_wrong_answer, test_stub = table_tests(CASES, GIVEAWAYS)
