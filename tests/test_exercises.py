"""Every exercise check passes a right answer and fails typical wrong ones, with a hint.

Each check meets its right answer, at least three typical wrong answers (each with a stable
part of the hint it must print), and an unfinished stub (NotImplementedError goes through).
The wrong answers include those a review found accepted by lenient checks: detached
log-variances, one summed backward for "separate backward", a weighted total without the
ValueError, MSE under no_grad, BCE with NaN gradients at +-1e4, accumulation that divides by
k with unequal micro-batches, balanced weights without minlength, focal losses with NaN
gradients at gamma < 1, and answers calling the function the exercise forbids.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from exercise_cases import case_tests

import multiloss_helpers as mlh
from multiloss_helpers import exercises as ex


# ------------------------------------------------------------------ foundations
def _mse(i, t, *, reduction="mean"):
    e = (i - t) ** 2
    return {"mean": e.mean(), "sum": e.sum(), "none": e}[reduction]


def _mse_no_grad(i, t, *, reduction="mean"):
    with torch.no_grad():
        return _mse(i, t, reduction=reduction)


def _bce(z, t):
    return (F.softplus(z) - t * z).mean()


def _bce_naive(z, t):
    p = torch.sigmoid(z)
    return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()


def _bce_where(z, t):
    # finite values, but exp(+-1e4) overflows in the branch where() does not pick: NaN grads
    pos = z - t * z + torch.log1p(torch.exp(-z))
    neg = -t * z + torch.log1p(torch.exp(z))
    return torch.where(z > 0, pos, neg).mean()


def _per_sample_naive(x, t):
    return -torch.log(torch.softmax(x, 1).gather(1, t[:, None]).squeeze(1))


# -------------------------------------------------------------------- combining
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


def _weighted_total(losses, weights):
    if set(losses) != set(weights):
        raise ValueError(f"losses {sorted(losses)} and weights {sorted(weights)} differ")
    return torch.stack([weights[k] * v for k, v in losses.items()]).sum()


def _weighted_total_vague(losses, weights):
    if set(losses) != set(weights):
        raise ValueError("the names differ")
    return _weighted_total(losses, weights)


def _two_losses(model, batch):
    out = model(batch["x"])
    return F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"])


def _separate(model, batch):
    cls, reg = _two_losses(model, batch)
    cls.backward(retain_graph=True)
    reg.backward()


def _one_summed_backward(model, batch):
    cls, reg = _two_losses(model, batch)
    (cls + reg).backward()


def _accumulate(weighting):
    def fn(model, batch, k):
        n = len(batch["x"])
        for j in range(k):
            micro = {key: v[j::k] for key, v in batch.items()}
            total = sum(_two_losses(model, micro))
            scale = {"size": len(micro["x"]) / n, "k": 1 / k, "none": 1.0}[weighting]
            (total * scale).backward()

    return fn


def _accumulate_zeroing(model, batch, k):
    model.zero_grad()
    _accumulate("size")(model, batch, k)


def _accumulate_one_pass(model, batch, k):
    sum(_two_losses(model, batch)).backward()


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.scale * g, None


def _ema(values, decay):
    out = []
    for v in values:
        out.append(v if not out else decay * out[-1] + (1 - decay) * v)
    return out


# -------------------------------------------------------------------- imbalance
def _balanced_accuracy(p, t):
    return torch.stack([(p[t == c] == c).float().mean() for c in torch.unique(t)]).mean()


def _focal_b(z, t, alpha, gamma):
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    s = z * (2 * t - 1)  # the logit of the true class
    loss = torch.exp(gamma * F.logsigmoid(-s)) * ce  # (1 - p_t) ** gamma in log space
    return (loss if alpha is None else (alpha * t + (1 - alpha) * (1 - t)) * loss).mean()


def _focal_b_naive(z, t, alpha, gamma):
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    p = torch.sigmoid(z)
    loss = (1 - (p * t + (1 - p) * (1 - t))) ** gamma * ce
    return (loss if alpha is None else (alpha * t + (1 - alpha) * (1 - t)) * loss).mean()


def _focal_m(logits, target, gamma):
    log_p = torch.log_softmax(logits, 1)
    log_pt = log_p.gather(1, target[:, None]).squeeze(1)
    others = log_p.masked_fill(F.one_hot(target, logits.shape[1]).bool(), float("-inf"))
    return (-torch.exp(gamma * torch.logsumexp(others, 1)) * log_pt).mean()


def _focal_m_naive(logits, target, gamma):
    log_pt = torch.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - log_pt.exp()) ** gamma) * log_pt).mean()


# -------------------------------------------------------------------- weighting
def _pc2(g1, g2):
    d = g1 @ g2
    if d >= 0:
        return g1 + g2
    return (g1 - d / (g2 @ g2) * g2) + (g2 - d / (g1 @ g1) * g1)


def _pc2_sequential(g1, g2):
    d = g1 @ g2
    if d >= 0:
        return g1 + g2
    p1 = g1 - d / (g2 @ g2) * g2
    return p1 + (g2 - (g2 @ p1) / (p1 @ p1) * p1)


def _autocast(model, batch):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return _two_losses(model, batch)


def _autocast_no_grad(model, batch):
    with torch.no_grad():
        return _autocast(model, batch)


CASES = {
    # check: (a right answer, [(a typical wrong answer, a stable part of its hint), ...])
    "check_mean_squared_error": (
        _mse,
        [
            (lambda i, t, *, reduction="mean": F.mse_loss(i, t, reduction=reduction), "F.mse_loss"),
            (_mse_no_grad, "no graph"),
            (lambda i, t, *, reduction="mean": _mse(i, t, reduction="sum"), "divide by"),
            (lambda i, t, *, reduction="mean": (i - t).abs().mean(), "reduction="),
        ],
    ),
    "check_bce_with_logits": (
        _bce,
        [
            (lambda z, t: F.binary_cross_entropy_with_logits(z, t), "does not allow"),
            (lambda z, t: F.binary_cross_entropy(torch.sigmoid(z), t), "does not allow"),
            (_bce_naive, "not finite"),
            (_bce_where, "gradient is not"),
            (lambda z, t: _bce(z.detach(), t), "no graph"),
        ],
    ),
    "check_weighted_epoch_mean": (
        lambda m, n: sum(a * b for a, b in zip(m, n)) / sum(n),
        [
            (lambda m, n: sum(m) / len(m), "every sample"),
            (lambda m, n: sum(m), "every sample"),
            (lambda m, n: sum(a * b for a, b in zip(m, n)) / len(n), "every sample"),
        ],
    ),
    "check_per_sample_losses": (
        lambda x, t: F.cross_entropy(x, t, reduction="none"),
        [
            (lambda x, t: F.cross_entropy(x, t), "one loss per sample"),
            (lambda x, t: F.nll_loss(x, t, reduction="none"), "value is wrong"),
            (_per_sample_naive, "not finite"),
            (lambda x, t: F.cross_entropy(x.detach(), t, reduction="none"), "no graph"),
        ],
    ),
    "check_total_loss": (
        lambda losses: sum(losses.values()),
        [
            (lambda losses: torch.tensor([v.item() for v in losses.values()]).sum(), "no graph"),
            (lambda losses: torch.stack(list(losses.values())).mean(), "value is wrong"),
            (
                lambda losses: sum(v if i else v.detach() for i, v in enumerate(losses.values())),
                "does not reach",
            ),
        ],
    ),
    "check_reached_parameters": (
        _reached,
        [
            (lambda loss, model: {n for n, _ in model.named_parameters()}, "not reached"),
            (
                lambda loss, model: {n for n, _ in model.named_parameters() if "trunk" in n},
                "missing",
            ),
            (_reached_by_grad, "torch.autograd.grad"),
            (
                lambda loss, model: {n for n, p in model.named_parameters() if p.requires_grad},
                "not reached",
            ),
        ],
    ),
    "check_normalised_weights": (
        lambda init: {k: 1 / v for k, v in init.items()},
        [
            (lambda init: dict(init), "should be 1"),
            (lambda init: {k: 1 / v for k, v in list(init.items())[:2]}, "same task names"),
            (lambda init: {k: 1 / sum(init.values()) for k in init}, "should be 1"),
        ],
    ),
    "check_weighted_total": (
        _weighted_total,
        [
            (
                lambda losses, weights: sum(weights.get(k, 1.0) * v for k, v in losses.items()),
                "nothing is raised",
            ),
            (
                lambda losses, weights: sum(weights[k] * v for k, v in losses.items()),
                "ValueError",
            ),
            (_weighted_total_vague, "does not name"),
            (lambda losses, weights: sum(losses.values()), "value is wrong"),
            (
                lambda losses, weights: _weighted_total(
                    {k: v.detach() for k, v in losses.items()}, weights
                ),
                "no graph",
            ),
        ],
    ),
    "check_separate_backward_step": (
        _separate,
        [
            (_one_summed_backward, "ran 1 backward"),
            (lambda model, batch: _two_losses(model, batch)[1].backward(), "ran 1 backward"),
            (lambda model, batch: (_separate(model, batch), _separate(model, batch)), "ran 4"),
        ],
    ),
    "check_accumulated_gradients": (
        _accumulate("size"),
        [
            (_accumulate("k"), "differ in size"),
            (_accumulate("none"), "full-batch"),
            (_accumulate_zeroing, "do not zero"),
            (_accumulate_one_pass, "one backward per micro-batch"),
        ],
    ),
    "check_linear_warmup": (
        lambda step, warmup: min(step / warmup, 1.0),
        [
            (lambda step, warmup: step / warmup, "with warmup"),
            (lambda step, warmup: min((step + 1) / warmup, 1.0), "step 0"),
            (lambda step, warmup: min(step // warmup, 1), "with warmup=4"),
        ],
    ),
    "check_ema": (
        _ema,
        [
            (
                lambda values, decay: [sum(values[: i + 1]) / (i + 1) for i in range(len(values))],
                "decay",
            ),
            (lambda values, decay: _ema([0.0, *values], decay)[1:], "first average"),
            (lambda values, decay: _ema(values, 1 - decay), "decay=0.0"),
        ],
    ),
    "check_connected_weight_sum": (
        lambda model: torch.stack([p.sum() for p in model.parameters()]).sum(),
        [
            (
                lambda model: torch.tensor([p.sum().item() for p in model.parameters()]).sum(),
                "graph is cut",
            ),
            (
                lambda model: torch.stack([p.mean() for p in model.parameters()]).sum(),
                "value is wrong",
            ),
            (
                lambda model: torch.stack(
                    [
                        p.sum() if "weight" in n else p.detach().sum()
                        for n, p in model.named_parameters()
                    ]
                ).sum(),
                "does not reach",
            ),
        ],
    ),
    "check_gradient_reversal": (
        lambda x, scale: _Reverse.apply(x, scale),
        [
            (lambda x, scale: -scale * x, "forward pass"),
            (lambda x, scale: _Reverse.apply(x, 1.0), "-scale"),
            (lambda x, scale: x.detach().clone(), "no graph"),
            (lambda x, scale: x * 1.0, "-scale"),
        ],
    ),
    "check_balanced_weights": (
        lambda t, c: t.numel() / (c * torch.bincount(t, minlength=c).float()),
        [
            (lambda t, c: t.numel() / (c * torch.bincount(t).float()), "every class needs"),
            (lambda t, c: 1.0 / torch.bincount(t, minlength=c).float(), "n / C"),
            (
                lambda t, c: (
                    t.numel() / (len(torch.unique(t)) * torch.bincount(t, minlength=c).float())
                ),
                "n / C",
            ),
            (lambda t, c: mlh.class_weights(t, c), "mlh.class_weights"),
        ],
    ),
    "check_balanced_accuracy": (
        _balanced_accuracy,
        [
            (lambda p, t: (p == t).float().mean().item(), "majority"),
            (lambda p, t: mlh.per_class_precision(p, t).nan_to_num().mean().item(), "majority"),
            (
                lambda p, t: (
                    torch.stack(
                        [(p[t == c] == c).float().mean() for c in torch.unique(torch.cat([p, t]))]
                    )
                    .nan_to_num()
                    .mean()
                ),
                "class 3",
            ),
            (lambda p, t: mlh.balanced_accuracy(p, t), "mlh.balanced_accuracy"),
        ],
    ),
    "check_binary_focal": (
        _focal_b,
        [
            (_focal_b_naive, "gradient is not"),
            (lambda z, t, a, g: (a if a is not None else 1.0) * _focal_b(z, t, None, g), "alpha="),
            (lambda z, t, a, g: _focal_b(z, t, a, 0.0), "gamma=2.0"),
            (
                lambda z, t, a, g: mlh.binary_focal_loss(z, t, alpha=a, gamma=g),
                "mlh.binary_focal_loss",
            ),
            (lambda z, t, a, g: _focal_b(z.detach(), t, a, g), "no graph"),
        ],
    ),
    "check_multiclass_focal": (
        _focal_m,
        [
            (_focal_m_naive, "gradient is not"),
            (lambda x, t, g: F.cross_entropy(x, t), "gamma=0.5"),
            (lambda x, t, g: mlh.focal_loss(x, t, gamma=g), "mlh.focal_loss"),
            (
                lambda x, t, g: (
                    -((1 - torch.softmax(x, 1).max(1).values) ** g)
                    * torch.log_softmax(x, 1).gather(1, t[:, None]).squeeze(1)
                ).mean(),
                "value is wrong",
            ),
        ],
    ),
    "check_pcgrad_two": (
        _pc2,
        [
            (lambda g1, g2: g1 + g2, "other's original"),
            (lambda g1, g2: _pc2(g1, g2) if g1 @ g2 < 0 else g1 - g2, "without a conflict"),
            (_pc2_sequential, "other's original"),
            (lambda g1, g2: mlh.pcgrad(torch.stack([g1, g2])), "mlh.pcgrad"),
        ],
    ),
    "check_uncertainty_total": (
        lambda L, s: (0.5 * torch.exp(-s) * L + 0.5 * s).sum(),
        [
            (lambda L, s: (0.5 * torch.exp(-s.detach()) * L + 0.5 * s.detach()).sum(), "reach"),
            (lambda L, s: (0.5 * torch.exp(-s) * L).sum(), "regulariser"),
            (lambda L, s: (0.5 * torch.exp(s) * L + 0.5 * s).sum(), "regulariser"),
            (lambda L, s: mlh.UncertaintyWeighting(len(L))(L), "mlh.UncertaintyWeighting"),
        ],
    ),
    "check_shard": (
        lambda data, r, w: {k: v[r::w] for k, v in data.items()},
        [
            (lambda data, r, w: {k: v[: len(v) // w] for k, v in data.items()}, "overlap"),
            (lambda data, r, w: {"x": data["x"][r::w], "i": data["i"][::w]}, "aligned"),
            (lambda data, r, w: {"i": data["i"][r::w]}, "every key"),
        ],
    ),
    "check_autocast_losses": (
        _autocast,
        [
            (_two_losses, "autocast on"),
            (lambda m, b: tuple(v.to(torch.bfloat16) for v in _autocast(m, b)), "float32"),
            (_autocast_no_grad, "no graph"),
            (lambda m, b: _autocast(m, b)[0], "pair"),
        ],
    ),
    "check_stack_losses": (
        lambda losses: torch.stack(losses),
        [
            (lambda losses: torch.tensor([loss.item() for loss in losses]), "graph is cut"),
            (lambda losses: torch.stack(losses).sum(), "shape (3,)"),
            (lambda losses: torch.stack([loss.detach() for loss in losses]), "graph is cut"),
        ],
    ),
    "check_regression_loss": (
        lambda p, t: F.mse_loss(p.squeeze(1), t),
        [
            (lambda p, t: F.mse_loss(p, t), "warns"),
            (lambda p, t: F.mse_loss(p.squeeze(), t), "N=1 your loss warns"),
            (lambda p, t: ((p - t) ** 2).mean(), "matching entries"),
            (lambda p, t: ((p.squeeze(1) - t) ** 2).sum(), "matching entries"),
        ],
    ),
}


def test_every_check_is_tested_with_three_wrong_answers():
    """A check is in CASES (right answer, >= 3 wrong ones), or, for checks whose input is
    not a function (investigations, which take a measured finding), has its own test
    module that exercises it with a right answer and wrong ones."""
    checks = {name for name in ex.__all__ if name.startswith("check_")}
    others = checks - set(CASES)
    here = Path(__file__).parent
    own_tests = {
        name
        for path in here.glob("test_*.py")
        if path.name != Path(__file__).name
        for name in others
        if name in path.read_text()
    }
    assert others == own_tests, f"checks without tests: {sorted(others - own_tests)}"
    assert set(CASES) <= checks
    assert all(len(wrong) >= 3 for _, wrong in CASES.values())


(
    test_check_passes_a_right_answer,
    test_check_fails_a_typical_wrong_answer_with_a_hint,
    test_unfinished_stub_stops_with_not_implemented,
) = case_tests(CASES)


def test_a_non_function_is_reported():
    result = ex.check_ema(3)
    assert not result and "should be a function" in result.message


def test_forbidden_functions_are_restored_after_a_check():
    originals = (
        F.mse_loss,
        F.binary_cross_entropy_with_logits,
        mlh.focal_loss,
        torch.Tensor.backward,
    )
    ex.check_mean_squared_error(CASES["check_mean_squared_error"][1][0][0])
    ex.check_bce_with_logits(CASES["check_bce_with_logits"][1][0][0])
    ex.check_multiclass_focal(CASES["check_multiclass_focal"][1][2][0])
    ex.check_reached_parameters(_reached_by_grad)
    assert originals == (
        F.mse_loss,
        F.binary_cross_entropy_with_logits,
        mlh.focal_loss,
        torch.Tensor.backward,
    )


def test_a_forbidden_call_caught_by_the_answer_still_fails():
    def sneaky(i, t, *, reduction="mean"):
        try:
            return F.mse_loss(i, t, reduction=reduction)
        except Exception:
            return _mse(i, t, reduction=reduction)

    result = ex.check_mean_squared_error(sneaky)
    assert not result and "F.mse_loss" in result.message


def test_hints_never_contain_the_solution(capsys):
    """No hint of a wrong answer spells out the code of the right one."""
    giveaways = ("minlength", "logsigmoid", "softplus", "retain_graph", "len(micro", "expm1")
    for name, (_, wrong) in CASES.items():
        for bad, _ in wrong:
            message = getattr(ex, name)(bad).message
            assert not any(word in message for word in giveaways), (name, message)
    capsys.readouterr()


def test_expect_number_accepts_a_finding_within_tolerance_only():
    from multiloss_helpers.exercises import _harness as h

    assert h.expect_number(torch.tensor([0.31]), 0.3, "recall", abs_tol=0.02) == pytest.approx(0.31)
    for bad, part in ((0.5, "not what"), (float("nan"), "not finite"), ([0.3], "one number")):
        with pytest.raises(h.Hint, match=part):
            h.expect_number(bad, 0.3, "recall", abs_tol=0.02)
