"""Every exercise check passes a correct answer and fails two typical wrong ones, with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import multiloss_helpers as mlh
from multiloss_helpers import exercises as ex


def _mse(i, t, reduction="mean"):
    e = (i - t) ** 2
    return {"mean": e.mean(), "sum": e.sum(), "none": e}[reduction]


def _separate(model, batch):
    out = model(batch["x"])
    F.cross_entropy(out["cls"], batch["y_cls"]).backward(retain_graph=True)
    F.mse_loss(out["reg"], batch["y_reg"]).backward()


def _accumulate(scale):
    def fn(model, batch, k):
        for j in range(k):
            micro = {key: v[j::k] for key, v in batch.items()}
            out = model(micro["x"])
            total = F.cross_entropy(out["cls"], micro["y_cls"]) + F.mse_loss(
                out["reg"], micro["y_reg"]
            )
            (total / k if scale else total).backward()

    return fn


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.scale * g, None


def _ema(values, decay):
    out, avg = [], None
    for v in values:
        avg = v if avg is None else decay * avg + (1 - decay) * v
        out.append(avg)
    return out


def _focal_b(z, t, alpha, gamma):
    ce = F.binary_cross_entropy_with_logits(z, t, reduction="none")
    p = torch.sigmoid(z)
    loss = (1 - (p * t + (1 - p) * (1 - t))) ** gamma * ce
    return (loss if alpha is None else (alpha * t + (1 - alpha) * (1 - t)) * loss).mean()


def _focal_m(logits, target, gamma):
    logp = torch.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


def _pc2(g1, g2):
    d = g1 @ g2
    if d >= 0:
        return g1 + g2
    return (g1 - d / (g2 @ g2) * g2) + (g2 - d / (g1 @ g1) * g1)


def _autocast(model, batch):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch["x"])
        return F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"])


def _no_autocast(model, batch):
    out = model(batch["x"])
    return F.cross_entropy(out["cls"], batch["y_cls"]), F.mse_loss(out["reg"], batch["y_reg"])


CASES = {
    # check: (a correct answer, [(a typical wrong answer, a stable part of its hint), ...])
    "check_mean_squared_error": (
        _mse,
        [
            (
                lambda i, t, reduction="mean": (
                    _mse(i, t, reduction) * (1 if reduction != "mean" else i.numel())
                ),
                "dividing",
            ),
            (lambda i, t, reduction="mean": (i - t).abs().mean(), "reduction='mean'"),
        ],
    ),
    "check_bce_with_logits": (
        lambda z, t: F.binary_cross_entropy_with_logits(z, t),
        [
            (lambda z, t: F.binary_cross_entropy(torch.sigmoid(z), t), "wrong"),
            (
                lambda z, t: (
                    -(
                        t * torch.log(torch.sigmoid(z)) + (1 - t) * torch.log(1 - torch.sigmoid(z))
                    ).mean()
                ),
                "not finite",
            ),
        ],
    ),
    "check_weighted_epoch_mean": (
        lambda m, n: sum(a * b for a, b in zip(m, n)) / sum(n),
        [
            (lambda m, n: sum(m) / len(m), "weights each batch"),
            (lambda m, n: sum(m), "weights each batch"),
        ],
    ),
    "check_per_sample_losses": (
        lambda x, t: F.cross_entropy(x, t, reduction="none"),
        [
            (lambda x, t: F.cross_entropy(x, t), "one loss per sample"),
            (lambda x, t: F.nll_loss(x, t, reduction="none"), "not the per-sample"),
        ],
    ),
    "check_total_loss": (
        lambda losses: sum(losses.values()),
        [
            (lambda losses: torch.tensor([v.item() for v in losses.values()]).sum(), "no graph"),
            (lambda losses: torch.stack(list(losses.values())).mean(), "not the sum"),
        ],
    ),
    "check_normalised_weights": (
        lambda init: {k: 1 / v for k, v in init.items()},
        [
            (lambda init: {k: v for k, v in init.items()}, "should be 1"),
            (lambda init: {k: 1 / v for k, v in list(init.items())[:2]}, "same task names"),
        ],
    ),
    "check_separate_backward_step": (
        _separate,
        [
            (
                lambda model, batch: F.mse_loss(
                    model(batch["x"])["reg"], batch["y_reg"]
                ).backward(),
                "no gradient",
            ),
            (
                lambda model, batch: (_separate(model, batch), _separate(model, batch)),
                "counted twice",
            ),
        ],
    ),
    "check_accumulated_gradients": (
        _accumulate(True),
        [
            (_accumulate(False), "needs scaling"),
            (
                lambda model, batch, k: _accumulate(True)(
                    model, {key: v[: len(v) // k] for key, v in batch.items()}, 1
                ),
                "full-batch",
            ),
        ],
    ),
    "check_linear_warmup": (
        lambda step, warmup: min(step / warmup, 1.0),
        [
            (lambda step, warmup: step / warmup, "with warmup"),
            (lambda step, warmup: min((step + 1) / warmup, 1.0), "step 0"),
        ],
    ),
    "check_ema": (
        _ema,
        [
            (
                lambda values, decay: [sum(values[: i + 1]) / (i + 1) for i in range(len(values))],
                "with decay",
            ),
            (lambda values, decay: _ema([0.0] + values, decay)[1:], "first average"),
        ],
    ),
    "check_connected_weight_sum": (
        lambda model: torch.stack([p.sum() for p in model.parameters()]).sum(),
        [
            (
                lambda model: torch.sum(torch.tensor([p.sum().item() for p in model.parameters()])),
                "graph is cut",
            ),
            (
                lambda model: torch.stack([p.mean() for p in model.parameters()]).sum(),
                "not the sum",
            ),
        ],
    ),
    "check_gradient_reversal": (
        lambda x, scale: _Reverse.apply(x, scale),
        [
            (lambda x, scale: -scale * x, "forward pass"),
            (lambda x, scale: _Reverse.apply(x, 1.0), "-scale"),
        ],
    ),
    "check_balanced_weights": (
        lambda t, c: t.numel() / (c * torch.bincount(t, minlength=c).float()),
        [
            (lambda t, c: 1.0 / torch.bincount(t, minlength=c).float(), "n / C"),
            (lambda t, c: torch.bincount(t, minlength=c).float() / t.numel(), "n / C"),
        ],
    ),
    "check_balanced_accuracy": (
        lambda p, t: mlh.per_class_recall(p, t)[~mlh.per_class_recall(p, t).isnan()].mean().item(),
        [
            (lambda p, t: (p == t).float().mean().item(), "0.5"),
            (lambda p, t: mlh.per_class_precision(p, t).nan_to_num().mean().item(), "0.5"),
        ],
    ),
    "check_binary_focal": (
        _focal_b,
        [
            (
                lambda z, t, a, g: (a if a is not None else 1.0) * _focal_b(z, t, None, g),
                "alpha weights positives",
            ),
            (lambda z, t, a, g: _focal_b(z, t, a, 0.0), "gamma"),
        ],
    ),
    "check_multiclass_focal": (
        _focal_m,
        [
            (lambda x, t, g: F.cross_entropy(x, t), "gamma="),
            (
                lambda x, t, g: (
                    -((1 - torch.softmax(x, 1).max(1).values) ** g)
                    * torch.log_softmax(x, 1).gather(1, t[:, None]).squeeze(1)
                ).mean(),
                "true class",
            ),
        ],
    ),
    "check_pcgrad_two": (
        _pc2,
        [
            (lambda g1, g2: g1 + g2, "conflicting"),
            (lambda g1, g2: _pc2(g1, g2) if g1 @ g2 < 0 else g1 - g2, "plain sum"),
        ],
    ),
    "check_uncertainty_total": (
        lambda L, s: (0.5 * torch.exp(-s) * L + 0.5 * s).sum(),
        [
            (lambda L, s: (0.5 * torch.exp(-s) * L).sum(), "regulariser"),
            (
                lambda L, s: (0.5 * torch.exp(-s.detach()) * L + 0.5 * s.detach()).sum(),
                "log-variances",
            ),
        ],
    ),
    "check_shard": (
        lambda data, r, w: {k: v[r::w] for k, v in data.items()},
        [
            (lambda data, r, w: {k: v[: len(v) // w] for k, v in data.items()}, "overlap"),
            (lambda data, r, w: {"x": data["x"][r::w], "i": data["i"][::w]}, "aligned"),
        ],
    ),
    "check_autocast_losses": (
        _autocast,
        [
            (_no_autocast, "autocast on"),
            (lambda m, b: tuple(v.to(torch.bfloat16) for v in _autocast(m, b)), "float32"),
        ],
    ),
    "check_stack_losses": (
        lambda losses: torch.stack(losses),
        [
            (lambda losses: torch.tensor([l.item() for l in losses]), "graph is cut"),
            (lambda losses: torch.stack(losses).sum(), "shape (3,)"),
        ],
    ),
    "check_regression_loss": (
        lambda p, t: F.mse_loss(p.squeeze(1), t),
        [
            (lambda p, t: F.mse_loss(p, t), "warns"),
            (lambda p, t: ((p.squeeze(1) - t) ** 2).sum(), "mean squared error"),
        ],
    ),
}


def _reached(loss, model):
    reached = mlh.grads._reachable_leaves(loss.grad_fn)
    return {n for n, p in model.named_parameters() if id(p) in reached}


def _weighted_total(losses, weights):
    if set(losses) != set(weights):
        raise ValueError("names differ")
    return sum(weights[k] * v for k, v in losses.items())


CASES["check_reached_parameters"] = (
    _reached,
    [
        (lambda loss, model: {n for n, _ in model.named_parameters()}, "not reached but listed"),
        (
            lambda loss, model: {n for n, _ in model.named_parameters() if n.startswith("trunk")},
            "missing",
        ),
    ],
)
CASES["check_weighted_total"] = (
    _weighted_total,
    [
        (
            lambda losses, weights: sum(weights.get(k, 1.0) * v for k, v in losses.items()),
            "should raise",
        ),
        (lambda losses, weights: sum(losses.values()), "wrong"),
    ],
)


def test_every_check_is_tested():
    assert set(CASES) == {name for name in ex.__all__ if name.startswith("check_")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_passes_a_correct_answer(name, capsys):
    good, _ = CASES[name]
    result = getattr(ex, name)(good)
    out = capsys.readouterr().out
    assert result and result.passed, out
    assert out.startswith("✓")


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("which", [0, 1])
def test_check_fails_a_typical_wrong_answer_with_a_hint(name, which, capsys):
    _, wrong = CASES[name]
    bad, hint = wrong[which]
    result = getattr(ex, name)(bad)
    out = capsys.readouterr().out
    assert not result and out.startswith("✗"), out
    assert hint in result.message, f"{name}: hint {hint!r} not in {result.message!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_unfinished_stub_stops_with_not_implemented(name):
    def stub(*args, **kwargs):
        raise NotImplementedError("exercise")

    with pytest.raises(NotImplementedError):
        getattr(ex, name)(stub)


def test_a_non_function_is_reported():
    result = ex.check_ema(3)
    assert not result and "should be a function" in result.message
