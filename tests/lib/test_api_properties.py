"""Properties that every public function must have, each checked over the whole public API.

One table per property, keyed by public name. A completeness test compares each table and
its explicit exclusions (every exclusion says why the property does not apply) with the
public names, so a new public name fails until it is put in the table or excluded.

- dtype: low precision in, float32 inside, the input's dtype out, within a few roundings
  of the float64 result on the same (already rounded) inputs;
- -inf masks: a class masked with -inf gives the value and gradient of the problem
  without that class, never NaN;
- extreme values: logits of +-1e4 and near the float32 maximum give finite values and
  gradients where the answer is finite;
- NumPy scalars: every numeric hyperparameter takes ``np.float64``/``np.int64`` like a
  Python number, with the same result;
- seeds: every seed takes 0 .. 2**64 - 1 (NumPy ints too), refuses 2**64 and negatives
  with a ``ValueError`` naming it, and gives the same result twice.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import multiloss_helpers as mlh

INF = float("inf")

# ----------------------------------------------------------------------------- the public API
# Every name in mlh.__all__ is classified once: it takes (or holds) tensors, or it does not.
NOT_TENSOR = {
    "__version__": "a string",
    "exercises": "the chapters' exercise checks, tested in their own files",
    "Callback": "a base class whose hooks do nothing",
    "WorkerError": "an exception",
    "book_style": "a matplotlib style context",
    "use_book_style": "sets the matplotlib style",
    "default_device": "returns a device",
    "dann_scale": "a float schedule",
    "ramp": "a float schedule",
    "seed_everything": "seeds the generators",
    "launch": "runs workers in processes",
    "compare_times": "times callables",
    "saved_tensor_bytes": "measures a callable's saved tensors",
    "ring_centres": "makes a tensor from two numbers",
    "make_domain_data": "makes data from numbers and a seed",
    "make_imbalanced_data": "makes data from numbers and a seed",
    "make_multitask_data": "makes data from numbers and a seed",
    "make_ring_data": "makes data from numbers and a seed",
    "make_segmentation_data": "makes data from numbers and a seed",
    "plot_history": "plots a LossHistory",
    "load_penguins": "reads a CSV file into tensors; takes two bools",
    "TaskMixer": "mixes loaders; passes their batches through",
    "t_quantile": "a float from two numbers",
    "PairedDifference": "a record of floats",
    "paired_difference": "summarises per-seed numbers in float64 (tests/lib/test_stats.py)",
}
PUBLIC = set(mlh.__all__)
TENSOR_API = PUBLIC - set(NOT_TENSOR)


def test_every_public_name_is_classified():
    assert set(NOT_TENSOR) <= PUBLIC, set(NOT_TENSOR) - PUBLIC


def _check_complete(table: dict[str, Any], excluded: dict[str, str], universe: set[str]) -> None:
    both = set(table) & set(excluded)
    assert not both, f"in the table and excluded: {sorted(both)}"
    missing = universe - set(table) - set(excluded)
    assert not missing, f"public names with no case and no exclusion: {sorted(missing)}"
    stale = (set(table) | set(excluded)) - universe
    assert not stale, f"names that are not public (any more): {sorted(stale)}"


def _xfail(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, reason=reason)


def _params(table: dict[str, Any], xfails: dict[str, str]) -> list[Any]:
    return [
        pytest.param(name, marks=_xfail(xfails[name])) if name in xfails else name
        for name in sorted(table)
    ]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int = 0) -> Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=torch.float64)


# ============================================================================ 1. dtype
# A case takes the low-precision dtype and returns (outputs, references): the outputs of
# the function on low-precision inputs (gradients included) and the same quantities
# computed in float64 from the same rounded values. The first output must come back in
# the input's dtype.


def _leaves(dtype: torch.dtype, *tensors: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    low = [t.to(dtype).requires_grad_(True) for t in tensors]
    wide = [t.detach().double().requires_grad_(True) for t in low]
    return low, wide


def _with_grads(fn: Callable[..., Tensor], dtype: torch.dtype, *tensors: Tensor):
    low, wide = _leaves(dtype, *tensors)
    out, ref = fn(*low), fn(*wide)
    out.sum().backward()
    ref.sum().backward()
    return [out, *(t.grad for t in low)], [ref, *(t.grad for t in wide)]


LABELS = torch.tensor([0, 3, 1, 1, 2, 0])


def _focal(dtype):
    return _with_grads(lambda x: mlh.focal_loss(x, LABELS), dtype, _randn(6, 4))


def _focal_module(dtype):
    return _with_grads(lambda x: mlh.FocalLoss(gamma=1.5)(x, LABELS), dtype, _randn(6, 4))


BINARY = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])


def _binary_focal(dtype):
    return _with_grads(lambda x: mlh.binary_focal_loss(x, BINARY.to(x.dtype)), dtype, _randn(2, 3))


def _binary_focal_module(dtype):
    loss = mlh.BinaryFocalLoss(alpha=0.4)
    return _with_grads(lambda x: loss(x, BINARY.to(x.dtype)), dtype, _randn(2, 3))


SEGMENT = torch.tensor([[[0, 2], [1, 1]], [[2, 2], [0, 1]]])  # (2, 2, 2) class indices


def _dice(dtype):
    return _with_grads(
        lambda x: mlh.dice_loss(x, SEGMENT, weight=torch.tensor([1.0, 2.0, 0.5]).to(x.dtype)),
        dtype,
        _randn(2, 3, 2, 2),
    )


def _dice_module(dtype):
    return _with_grads(
        lambda x: mlh.DiceLoss(per_image=False)(x, SEGMENT), dtype, _randn(2, 3, 2, 2)
    )


def _binary_dice(dtype):
    return _with_grads(
        lambda x: mlh.binary_dice_loss(x, SEGMENT.unsqueeze(1) == 1), dtype, _randn(2, 1, 2, 2)
    )


def _binary_dice_module(dtype):
    loss = mlh.BinaryDiceLoss(smooth=0.5)
    return _with_grads(lambda x: loss(x, SEGMENT.unsqueeze(1) == 2), dtype, _randn(2, 1, 2, 2))


def _dice_ce(dtype):
    loss = mlh.DiceCELoss(lambda_ce=0.5)
    return _with_grads(lambda x: loss(x, SEGMENT), dtype, _randn(2, 3, 2, 2))


def _distillation(dtype):
    teacher = _randn(6, 4, seed=1).to(dtype)  # rounded once, for both sides
    return _with_grads(
        lambda s: mlh.distillation_loss(s, teacher.to(s.dtype), LABELS, temperature=3.0),
        dtype,
        _randn(6, 4),
    )


def _distillation_module(dtype):
    teacher, loss = _randn(6, 4, seed=1).to(dtype), mlh.DistillationLoss(reduction="sum")
    return _with_grads(lambda s: loss(s, teacher.to(s.dtype), LABELS), dtype, _randn(6, 4))


def _gaussian_kl(dtype):
    return _with_grads(mlh.gaussian_kl, dtype, _randn(5, 3), _randn(5, 3, seed=1))


def _l1(dtype):
    return _with_grads(lambda w, v: mlh.l1_penalty([w, v]), dtype, _randn(4, 5), _randn(3, 2))


def _l2(dtype):
    return _with_grads(lambda w, v: mlh.l2_penalty([w, v]), dtype, _randn(4, 5), _randn(3, 2))


def _entropy(dtype):
    return _with_grads(mlh.predictive_entropy, dtype, _randn(6, 5) * 3)


def _ddp_mean(dtype):
    return _with_grads(lambda s: mlh.ddp_mean(s.sum(), 3.0), dtype, _randn(4))


def _multitask(dtype):
    loss = mlh.MultiTaskLoss({"a": F.mse_loss, "b": F.l1_loss}, weights={"a": 0.3, "b": 2.0})

    def total(a: Tensor, b: Tensor) -> Tensor:
        return loss({"a": a, "b": b}, {"a": torch.zeros_like(a), "b": torch.ones_like(b)}).total

    return _with_grads(total, dtype, _randn(5), _randn(5, seed=1))


def _reverse(dtype):
    return _with_grads(lambda x: mlh.grad_reverse(x, 0.3) * 1.7, dtype, _randn(5))


def _reverse_module(dtype):
    return _with_grads(lambda x: mlh.GradientReversal(0.3)(x) * 1.7, dtype, _randn(5))


def _sample_weights(dtype):
    weights = _randn(4).abs()
    out = mlh.sample_weights(LABELS, weights.to(dtype))
    return [out], [weights.to(dtype).double()[LABELS]]


def _matrix_fn(fn: Callable[[Tensor], Tensor]) -> Callable[[torch.dtype], Any]:
    def case(dtype):
        grads = torch.tensor([[1.0, 0.5, -2.0, 0.25], [-1.0, 1.0, 0.3, 0.0], [0.2, -0.7, 1.0, 1.5]])
        low = grads.to(dtype)
        return [fn(low)], [fn(low.double())]

    return case


def _uncertainty(dtype):
    out_list, ref_list = [], []
    for compute in (dtype, torch.float64):
        weighting = mlh.UncertaintyWeighting(3).to(
            torch.float64 if compute == torch.float64 else torch.float32
        )
        with torch.no_grad():
            weighting.log_vars.copy_(torch.tensor([0.3, -1.2, 2.0]))
        losses = torch.tensor([0.9967, 3.25, 0.0123]).to(dtype).to(compute).requires_grad_(True)
        total = weighting(losses)
        total.backward()
        (out_list if compute == dtype else ref_list).extend([total, weighting.log_vars.grad])
    return out_list, ref_list


def _weights_strategy(make: Callable[[], mlh.Weighting]) -> Callable[[torch.dtype], Any]:
    """``backward`` on leaf losses: the weights it returns and the losses' gradient."""

    def case(dtype):
        results = []
        for wanted in (dtype, torch.float64):
            losses = torch.tensor([0.7, 2.3]).to(dtype).to(wanted).requires_grad_(True)
            weights = make().backward(losses)
            results.append([weights, losses.grad])
        return results[0], results[1]

    return case


def _surgery_strategy(make: Callable[[list[Tensor]], mlh.Weighting]) -> Callable[..., Any]:
    """``backward`` on losses linear in the shared weight: its per-task gradients are the
    exact rows ``C``, so the combined gradient in ``.grad`` is the strategy's arithmetic."""

    def case(dtype):
        rows = torch.tensor([[1.0, 0.5, -2.0, 0.25], [-1.0, 1.0, 0.3, 0.0], [0.2, -0.7, 1.0, 1.5]])
        results = []
        for wanted in (dtype, torch.float64):
            c = rows.to(dtype).to(wanted)
            shared = torch.ones(4, dtype=wanted, requires_grad=True)
            weights = make([shared]).backward((shared * c).sum(dim=1))
            results.append([weights, shared.grad])
        return results[0], results[1]

    return case


def _dwa(dtype):
    results = []
    for wanted in (dtype, torch.float64):
        dwa = mlh.DWA(3, temperature=1.5)
        for epoch_losses in ([1.0, 2.0, 3.0], [0.75, 1.9, 2.5], [0.5, 1.8, 2.0]):
            weights = dwa.step(torch.tensor(epoch_losses).to(dtype).to(wanted))
        results.append([weights])
    return results[0], results[1]


def _gradnorm(dtype):
    results = []
    for wanted in (dtype, torch.float64):
        shared = _randn(3, 2).to(dtype).to(wanted).requires_grad_(True)
        x = _randn(4, 3, seed=2).to(dtype).to(wanted)
        features = x @ shared
        losses = torch.stack([features[:, 0].pow(2).mean(), 10 * features[:, 1].abs().mean()])
        gradnorm = mlh.GradNorm(2, alpha=1.5)
        gradnorm.update(losses, [shared])
        results.append([gradnorm.update(losses, [shared])])
    return results[0], results[1]


def _smoothed_gate(dtype):
    results = []
    for wanted in (dtype, torch.float64):
        gate = mlh.SmoothedGate(threshold=1.0, decay=0.5)
        values = [gate.update(torch.tensor(v).to(dtype).to(wanted)) for v in (3.0, 0.5, 0.5)]
        results.append([values[-1].to(wanted), gate.average.to(wanted)])
    return results[0], results[1]


def _balance(dtype):
    return _with_grads(lambda x: mlh.load_balancing_loss(x, top_k=2), dtype, _randn(6, 4))


def _z_loss(dtype):
    return _with_grads(mlh.router_z_loss, dtype, _randn(6, 4) * 3)


def _masked_mean(dtype):
    mask = torch.tensor([[True, False, True], [True, True, False]])
    return _with_grads(lambda v: mlh.masked_mean(v.exp(), mask, dim=1), dtype, _randn(2, 3))


DTYPE_CASES: dict[str, Callable[[torch.dtype], Any]] = {
    "masked_mean": _masked_mean,
    "dice_loss": _dice,
    "DiceLoss": _dice_module,
    "binary_dice_loss": _binary_dice,
    "BinaryDiceLoss": _binary_dice_module,
    "DiceCELoss": _dice_ce,
    "focal_loss": _focal,
    "FocalLoss": _focal_module,
    "binary_focal_loss": _binary_focal,
    "BinaryFocalLoss": _binary_focal_module,
    "distillation_loss": _distillation,
    "DistillationLoss": _distillation_module,
    "gaussian_kl": _gaussian_kl,
    "l1_penalty": _l1,
    "l2_penalty": _l2,
    "predictive_entropy": _entropy,
    "ddp_mean": _ddp_mean,
    "MultiTaskLoss": _multitask,
    "grad_reverse": _reverse,
    "GradientReversal": _reverse_module,
    "sample_weights": _sample_weights,
    "pcgrad": _matrix_fn(mlh.pcgrad),
    "mgda": _matrix_fn(mlh.mgda),
    "min_norm_weights": _matrix_fn(mlh.min_norm_weights),
    "grad_cosine": _matrix_fn(mlh.grad_cosine),
    "UncertaintyWeighting": _uncertainty,
    "EqualWeighting": _weights_strategy(lambda: mlh.EqualWeighting(2)),
    "Constraints": _weights_strategy(lambda: mlh.Constraints([0.5], damping=2.0, init=1.0)),
    "FixedWeighting": _weights_strategy(lambda: mlh.FixedWeighting([0.3, 2.0])),
    "MGDA": _surgery_strategy(lambda shared: mlh.MGDA(3, shared=shared)),
    "PCGrad": _surgery_strategy(lambda shared: mlh.PCGrad(3, shared=shared)),
    "DWA": _dwa,
    "GradNorm": _gradnorm,
    "SmoothedGate": _smoothed_gate,
    "load_balancing_loss": _balance,
    "router_z_loss": _z_loss,
}
DTYPE_EXCLUDED = {
    # nothing is computed: autograd's own gradients, or tensors copied or compared
    "per_loss_grads": "autograd's gradients, in the parameters' dtype (as torch.autograd.grad)",
    "flat_grad": "copies .grad",
    "assign_grad": "copies into .grad",
    "assert_connected": "walks the graph; computes nothing",
    "pareto_front": "comparisons only, exact in every dtype",
    "Weighting": "the abstract protocol; every strategy is in the table",
    "LossResult": "a record of tensors",
    "LossHistory": "records values as Python floats",
    "unpack_loss": "checks and passes tensors through",
    "BatchLoader": "slices tensors",
    "train_val_split": "slices tensors",
    # integer labels and counts in, no low-precision arithmetic
    "class_weights": "takes integer labels; counts in float32",
    "balanced_accuracy": "integer labels",
    "confusion_matrix": "integer labels",
    "per_class_precision": "integer labels",
    "per_class_recall": "integer labels",
    "precision_recall_curve": "a metric of scores: sorts and counts, no loss arithmetic",
    # drivers and figures, whose arithmetic is the model's or matplotlib's
    "MultiHeadNet": "a model; its dtype is its parameters'",
    "TopKMoE": "a model; its dtype is its parameters' (tests/lib/test_moe.py)",
    "fit": "the training loop; its arithmetic is the loss function's",
    "evaluate": "means of the loss function's values, in float32",
    "predict": "concatenates the model's outputs",
    "weight_decay_groups": "groups parameters; computes nothing",
    "plot_confusion_matrix": "a figure",
    "plot_loss_distribution": "a figure",
    "plot_precision_recall": "a figure",
    "plot_pareto_front": "a figure",
}
DTYPE_XFAIL: dict[str, str] = {}


def test_dtype_table_is_complete():
    _check_complete(DTYPE_CASES, DTYPE_EXCLUDED, TENSOR_API)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", _params(DTYPE_CASES, DTYPE_XFAIL))
def test_low_precision_in_float32_inside_input_dtype_out(name, dtype):
    outputs, references = DTYPE_CASES[name](dtype)
    assert outputs[0].dtype == dtype, f"{name} returned {outputs[0].dtype} for {dtype} input"
    for i, (out, ref) in enumerate(zip(outputs, references, strict=True)):
        assert out is not None and ref is not None, f"{name}: output {i} is missing"
        # float32 inside: the only error left is rounding the float32 result to the output
        # dtype (half an ulp), plus a little float32 noise; arithmetic in the low dtype is
        # several ulp off on these inputs
        eps = torch.finfo(out.dtype).eps
        want = ref.detach().double()
        got = out.detach().double()
        tol = 1.01 * eps * want.abs() + 1e-6 * want.abs().max().clamp_min(1e-3)
        worst = ((got - want).abs() - tol).max()
        assert worst <= 0, f"{name} output {i}: {got.tolist()} vs float64 {want.tolist()}"


# ============================================================================ 2. -inf masks
# A case returns (value, gradient of the logits, expected value, expected gradient): the
# expected ones come from the same problem without the masked class (its probability is
# exactly 0), where the gradient of the masked class is 0.


MASKED = torch.tensor([[0.5, -INF, 2.0, -1.0], [1.0, 0.2, -INF, 0.3], [-0.5, 1.5, 0.0, -INF]])
KEEP_ROWS = [[0, 2, 3], [0, 1, 3], [0, 1, 2]]  # the unmasked classes of each row


def _per_row_reference(loss_row: Callable[[Tensor, int], Tensor], logits: Tensor):
    """value and gradient of sum over rows of ``loss_row(row without masked, row index)``."""
    grads = torch.zeros_like(logits)
    total = torch.zeros((), dtype=logits.dtype)
    for i, keep in enumerate(KEEP_ROWS):
        row = logits[i, keep].clone().requires_grad_(True)
        value = loss_row(row, i)
        value.backward()
        grads[i, keep] = row.grad
        total = total + value.detach()
    return total, grads


TARGETS = torch.tensor([2, 3, 1])
REMAPPED = [1, 2, 1]  # the target's index among the kept classes of its row


def _mask_focal(module: bool):
    def case():
        loss = mlh.FocalLoss(gamma=2.0) if module else None

        def fn(x: Tensor, target: Tensor) -> Tensor:
            if loss is not None:
                loss.reduction = "sum"
                return loss(x, target)
            return mlh.focal_loss(x, target, gamma=2.0, reduction="sum")

        x = MASKED.double().requires_grad_(True)
        value = fn(x, TARGETS)
        value.backward()
        expected, grad = _per_row_reference(
            lambda row, i: fn(row[None], torch.tensor([REMAPPED[i]])), MASKED.double()
        )
        return value, x.grad, expected, grad

    return case


def _mask_binary_focal(module: bool):
    # a -inf logit with target 0 is a certain, right negative: no loss, no gradient
    def case():
        logits = torch.tensor([[-INF, 0.5, -1.0], [2.0, -INF, 0.0]], dtype=torch.float64)
        target = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]], dtype=torch.float64)
        loss = (
            mlh.BinaryFocalLoss(reduction="sum")
            if module
            else lambda x, t: mlh.binary_focal_loss(x, t, reduction="sum")
        )
        x = logits.clone().requires_grad_(True)
        value = loss(x, target)
        value.backward()
        finite = torch.isfinite(logits)
        kept = logits[finite].clone().requires_grad_(True)
        expected = loss(kept, target[finite])
        expected.backward()
        grad = torch.zeros_like(logits)
        grad[finite] = kept.grad
        return value, x.grad, expected.detach(), grad

    return case


def _kl_rows(student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    """sum_j p_j (log p_j - log q_j) over the classes where the teacher's p_j > 0."""
    log_q = F.log_softmax(student / temperature, dim=-1)
    log_p = F.log_softmax(teacher / temperature, dim=-1)
    keep = torch.isfinite(log_p)
    return (log_p.exp()[keep] * (log_p[keep] - log_q[keep])).sum()


def _mask_distillation(module: bool, both: bool):
    # teacher masks a class; with ``both`` the student masks the same class too
    def case():
        temperature, alpha = 2.0, 0.6
        teacher = torch.tensor([[1.0, -INF, 0.0, 0.5], [0.3, 0.2, -INF, 1.0]], dtype=torch.float64)
        student = torch.tensor([[0.5, 0.7, 2.0, -1.0], [1.0, 0.2, 0.1, 0.3]], dtype=torch.float64)
        if both:
            student = torch.where(torch.isfinite(teacher), student, -INF)
        target = torch.tensor([0, 3])
        loss = (
            mlh.DistillationLoss(temperature=temperature, alpha=alpha, reduction="sum")
            if module
            else lambda s, t, y: mlh.distillation_loss(
                s, t, y, temperature=temperature, alpha=alpha, reduction="sum"
            )
        )
        x = student.clone().requires_grad_(True)
        value = loss(x, teacher, target)
        value.backward()
        # the reference: the rows without the masked class when both mask it; else the
        # full student against the teacher's zero-probability class
        grad = torch.zeros_like(student)
        expected = torch.zeros((), dtype=torch.float64)
        remapped = [0, 2]
        for i in range(2):
            keep = torch.isfinite(teacher[i]) if both else torch.ones(4, dtype=torch.bool)
            row = student[i, keep].clone().requires_grad_(True)
            soft = alpha * temperature**2 * _kl_rows(row, teacher[i, keep], temperature)
            hard = (1 - alpha) * F.cross_entropy(
                row[None], torch.tensor([remapped[i] if both else int(target[i])])
            )
            (soft + hard).backward()
            expected = expected + (soft + hard).detach()
            grad[i, keep] = row.grad
        return value, x.grad, expected, grad

    return case


def _mask_entropy():
    x = MASKED.double().requires_grad_(True)
    value = mlh.predictive_entropy(x, reduction="sum")
    value.backward()
    expected, grad = _per_row_reference(
        lambda row, i: -(F.softmax(row, -1) * F.log_softmax(row, -1)).sum(), MASKED.double()
    )
    return value, x.grad, expected, grad


def _mask_balance():
    # the reference never sees -inf: each row's softmax over its kept experts, put into
    # zeros; f from the top-2 of those probabilities (a masked expert is never chosen)
    x = MASKED.double().requires_grad_(True)
    value = mlh.load_balancing_loss(x, top_k=2)
    value.backward()
    kept = [
        MASKED.double()[i, keep].clone().requires_grad_(True) for i, keep in enumerate(KEEP_ROWS)
    ]
    probs = torch.stack(
        [
            torch.zeros(4, dtype=torch.float64).index_put((torch.tensor(keep),), F.softmax(row, -1))
            for row, keep in zip(kept, KEEP_ROWS)
        ]
    )
    routed = torch.zeros_like(probs).scatter_(1, probs.detach().topk(2).indices, 1.0)
    expected = 4 * (routed.mean(0) * probs.mean(0)).sum()
    expected.backward()
    grad = torch.zeros_like(x)
    for i, (row, keep) in enumerate(zip(kept, KEEP_ROWS)):
        grad[i, keep] = row.grad
    return value, x.grad, expected.detach(), grad


def _mask_z_loss():
    x = MASKED.double().requires_grad_(True)
    value = mlh.router_z_loss(x)
    value.backward()
    expected, grad = _per_row_reference(
        lambda row, i: torch.logsumexp(row, -1).square() / len(KEEP_ROWS), MASKED.double()
    )
    return value, x.grad, expected, grad


MASK_CASES: dict[str, Callable[[], Any]] = {
    "focal_loss": _mask_focal(False),
    "FocalLoss": _mask_focal(True),
    "binary_focal_loss": _mask_binary_focal(False),
    "BinaryFocalLoss": _mask_binary_focal(True),
    "distillation_loss": _mask_distillation(False, both=False),
    "DistillationLoss": _mask_distillation(True, both=True),
    "predictive_entropy": _mask_entropy,
    "load_balancing_loss": _mask_balance,
    "router_z_loss": _mask_z_loss,
}
# the distillation function with both logits masked, as a second case of the same name
MASK_EXTRA = {"distillation_loss (both masked)": _mask_distillation(False, both=True)}
NO_LOGITS = "takes no logits"
LOGIT_EXCLUDED = (
    {
        name: NO_LOGITS
        for name in TENSOR_API
        if name not in MASK_CASES
        and name
        not in {"gaussian_kl", "grad_reverse", "GradientReversal", "MultiTaskLoss", "SmoothedGate"}
    }
    | {
        name: "Dice averages over classes: a masked class absent from the target keeps a term of "
        "0 in the mean, so the answer is not the problem without it (tests/lib/test_dice.py)"
        for name in ("dice_loss", "DiceLoss", "DiceCELoss")
    }
    | {
        name: "a -inf logit is a certain 0 of its own channel: tests/lib/test_dice.py"
        for name in ("binary_dice_loss", "BinaryDiceLoss")
    }
    | {
        "gaussian_kl": "takes means and log-variances: a -inf log-variance is an infinite KL",
        "grad_reverse": "the identity: -inf in is -inf out (the extreme-value table has it)",
        "GradientReversal": "the identity: -inf in is -inf out (the extreme-value table has it)",
        "MultiTaskLoss": "sums the values of the loss callables it is given",
        "SmoothedGate": "watches a loss value, not logits",
    }
)
MASK_XFAIL: dict[str, str] = {}


def test_mask_table_is_complete():
    _check_complete(MASK_CASES, LOGIT_EXCLUDED, TENSOR_API)


@pytest.mark.parametrize("name", _params(MASK_CASES | MASK_EXTRA, MASK_XFAIL))
def test_a_masked_class_gives_the_finite_answer_without_it(name):
    value, grad, expected, expected_grad = (MASK_CASES | MASK_EXTRA)[name]()
    assert torch.isfinite(value), f"{name}: {value}"
    assert torch.isfinite(grad).all(), f"{name}: {grad}"
    torch.testing.assert_close(value, expected.to(value.dtype))
    torch.testing.assert_close(grad, expected_grad)


# ============================================================================ 3. extreme values
# A case takes a logit scale and returns (value, gradients); every one must be finite. The
# cases keep the loss itself below the float32 maximum: at most one term of the size of
# the scale (a certain, wrong prediction), the others certain and right (loss 0).
BIG = 3e38  # near the float32 maximum (3.4e38)


def _extreme_focal(module: bool):
    def case(scale: float):
        x = torch.tensor([[scale, -scale, 0.0], [0.0, scale, 0.0]]).requires_grad_(True)
        target = torch.tensor([0, 2])  # certain and right; certain and wrong by the scale
        loss = mlh.FocalLoss() if module else mlh.focal_loss
        value = loss(x, target)
        value.backward()
        return value, [x.grad]

    return case


def _extreme_binary(module: bool):
    def case(scale: float):
        x = torch.tensor([[scale, -scale], [-scale, -scale]]).requires_grad_(True)
        target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # three right, one wrong by the scale
        loss = mlh.BinaryFocalLoss() if module else mlh.binary_focal_loss
        value = loss(x, target)
        value.backward()
        return value, [x.grad]

    return case


def _extreme_distillation(module: bool):
    def case(scale: float):
        # row 0: the teacher is certain of the class the student rules out (KL = scale / T);
        # row 1: both agree, certain
        student = torch.tensor([[scale, 0.0], [scale, -scale]]).requires_grad_(True)
        teacher = torch.tensor([[-scale, 0.0], [scale, -scale]])
        target = torch.tensor([0, 0])
        if module:
            value = mlh.DistillationLoss(temperature=1.0, alpha=0.5)(student, teacher, target)
        else:
            value = mlh.distillation_loss(student, teacher, target, temperature=1.0, alpha=0.5)
        value.backward()
        return value, [student.grad]

    return case


def _extreme_entropy(scale: float):
    x = torch.tensor([[scale, -scale, 0.0], [0.0, 0.0, scale]]).requires_grad_(True)
    value = mlh.predictive_entropy(x)
    value.backward()
    return value, [x.grad]


def _extreme_reverse(module: bool):
    def case(scale: float):
        x = torch.tensor([scale, -scale, 0.0]).requires_grad_(True)
        out = mlh.GradientReversal(0.5)(x) if module else mlh.grad_reverse(x, 0.5)
        (out * 0.5).sum().backward()
        return out, [x.grad]

    return case


def _extreme_balance(scale: float):
    x = torch.tensor([[scale, -scale, 0.0], [0.0, scale, -scale]]).requires_grad_(True)
    value = mlh.load_balancing_loss(x, top_k=1)
    value.backward()
    return value, [x.grad]


def _extreme_z_loss(scale: float):
    # the z-loss is the square of the logits' size: only 1e4 keeps it (1e8) finite with
    # a logit of +scale; beyond, the logits of -scale next to a 0 keep the answer finite
    big = min(scale, 1e4)
    x = torch.tensor([[0.0, -scale, -scale], [-scale, big, 0.0]]).requires_grad_(True)
    value = mlh.router_z_loss(x)
    value.backward()
    return value, [x.grad]


def _extreme_dice(make: Callable[[], Callable[[Tensor, Tensor], Tensor]], binary: bool):
    def case(scale: float):
        # pixel 0 certain and right, pixel 1 certain and wrong by the scale
        if binary:
            x = torch.tensor([[[[scale, -scale]]]]).requires_grad_(True)
            target: Tensor = torch.tensor([[[[True, True]]]])
        else:
            x = torch.tensor([[[[scale, 0.0]], [[-scale, scale]], [[0.0, 0.0]]]])
            x.requires_grad_(True)
            target = torch.tensor([[[0, 0]]])
        value = make()(x, target)
        value.backward()
        return value, [x.grad]

    return case


EXTREME_CASES: dict[str, Callable[[float], Any]] = {
    "dice_loss": _extreme_dice(lambda: mlh.dice_loss, binary=False),
    "DiceLoss": _extreme_dice(mlh.DiceLoss, binary=False),
    "DiceCELoss": _extreme_dice(mlh.DiceCELoss, binary=False),
    "binary_dice_loss": _extreme_dice(lambda: mlh.binary_dice_loss, binary=True),
    "BinaryDiceLoss": _extreme_dice(mlh.BinaryDiceLoss, binary=True),
    "focal_loss": _extreme_focal(False),
    "FocalLoss": _extreme_focal(True),
    "binary_focal_loss": _extreme_binary(False),
    "BinaryFocalLoss": _extreme_binary(True),
    "distillation_loss": _extreme_distillation(False),
    "DistillationLoss": _extreme_distillation(True),
    "predictive_entropy": _extreme_entropy,
    "grad_reverse": _extreme_reverse(False),
    "GradientReversal": _extreme_reverse(True),
    "load_balancing_loss": _extreme_balance,
    "router_z_loss": _extreme_z_loss,
}
EXTREME_EXCLUDED = {name: NO_LOGITS for name in TENSOR_API if name not in EXTREME_CASES} | {
    "gaussian_kl": "no logits; its extreme log-variances are in test_composite.py",
    "MultiTaskLoss": "sums the values of the loss callables it is given",
    "SmoothedGate": "watches a loss value, not logits",
}
EXTREME_XFAIL: dict[str, str] = {}


def test_extreme_value_table_is_complete():
    _check_complete(EXTREME_CASES, EXTREME_EXCLUDED, TENSOR_API)


@pytest.mark.parametrize("scale", [1e4, 1e30, BIG])
@pytest.mark.parametrize("name", _params(EXTREME_CASES, EXTREME_XFAIL))
def test_extreme_logits_give_finite_values_and_gradients(name, scale):
    value, grads = EXTREME_CASES[name](scale)
    assert torch.isfinite(value).all(), f"{name} at {scale:g}: {value}"
    for grad in grads:
        assert grad is not None and torch.isfinite(grad).all(), f"{name} at {scale:g}: {grad}"


# ============================================================================ 4. NumPy scalars
# A case takes ``num(value)``, which turns a Python number into the scalar type under test
# (or leaves it), passes every numeric hyperparameter through it, and returns a result
# that must be the same for NumPy and Python numbers.
Num = Callable[[Any], Any]
DATA = mlh.make_multitask_data(24, n_features=4, seed=0)


def _shared() -> list[Tensor]:
    return [_randn(3, 2).float().requires_grad_(True)]


def _drive(strategy: mlh.Weighting, shared: list[Tensor]) -> list[Tensor]:
    features = _randn(4, 3, seed=2).float() @ shared[0]
    losses = torch.stack([features[:, 0].pow(2).mean(), features[:, 1].abs().mean()])
    return [strategy.backward(losses), shared[0].grad]


def _np_fit(num: Num) -> Any:
    net = mlh.MultiHeadNet(4, {"reg": 1}, hidden=(8,), dropout=0.25, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)

    def loss_fn(model, batch):
        return F.mse_loss(model(batch["x"])["reg"], batch["y_reg"])

    history = mlh.fit(
        net,
        loss_fn,
        mlh.BatchLoader(DATA, 8),
        opt,
        epochs=num(2),
        max_grad_norm=num(1.0),
        progress=False,
        seed=num(3),
    )
    return history.steps()


def _np_history(num: Num) -> Any:
    history = mlh.LossHistory()
    history.log_step({"a": num(1.5), "b": num(3)}, epoch=num(0))
    history.log_epoch({"a": num(1.25)}, epoch=num(0), split="val")
    return history.steps("a"), history.steps("b"), history.epochs("a", split="val")


def _np_gate(num: Num) -> Any:
    gate = mlh.SmoothedGate(threshold=num(1.0), decay=num(0.5))
    return [gate.update(torch.tensor(v)) for v in (3.0, 0.5, 0.5)]


def _np_gradnorm(num: Num) -> Any:
    shared = _shared()
    gradnorm = mlh.GradNorm(num(2), alpha=num(1.5), lr=num(0.025), shared=shared)
    return _drive(gradnorm, shared)


def _np_worker_error(num: Num) -> Any:
    error = mlh.WorkerError("boom", rank=num(1), exitcode=num(2))
    return str(error), error.rank, error.exitcode


def _np_compare_times(num: Num) -> Any:
    return sorted(mlh.compare_times({"a": lambda: None}, repeats=num(2), warmup=num(0)))


def _np_plot_confusion(num: Num) -> Any:
    ax = mlh.plot_confusion_matrix(
        torch.tensor([0, 1, 2]), torch.tensor([0, 2, 2]), num_classes=num(3)
    )
    return len(ax.texts)


def _np_plot_history(num: Num) -> Any:
    history = mlh.LossHistory()
    for step in range(4):
        history.log_step({"total": float(step)}, epoch=0)
    return len(mlh.plot_history(history, level="step", smooth=num(2)).lines)


def _np_plot_distribution(num: Num) -> Any:
    return len(mlh.plot_loss_distribution(torch.arange(10.0), bins=num(4)).patches)


MIXED = {"a": list(range(6)), "b": list(range(10, 12))}
NUMPY_CASES: dict[str, Callable[[Num], Any]] = {
    "TaskMixer": lambda num: list(
        mlh.TaskMixer(
            MIXED,
            strategy="temperature",
            temperature=num(2.5),
            steps_per_epoch=num(20),
            seed=num(3),
            sizes={"a": num(3.0), "b": num(1)},
        )
    ),
    "masked_mean": lambda num: mlh.masked_mean(_randn(2, 3), _randn(2, 3) > 0, dim=num(1)),
    "dice_loss": lambda num: mlh.dice_loss(
        _randn(2, 3, 2, 2), SEGMENT, smooth=num(0.5), ignore_index=num(255)
    ),
    "DiceLoss": lambda num: mlh.DiceLoss(smooth=num(0.5), ignore_index=num(-1))(
        _randn(2, 3, 2, 2), SEGMENT
    ),
    "binary_dice_loss": lambda num: mlh.binary_dice_loss(
        _randn(2, 1, 2, 2), SEGMENT.unsqueeze(1) == 1, smooth=num(0.5)
    ),
    "BinaryDiceLoss": lambda num: mlh.BinaryDiceLoss(smooth=num(0.5))(
        _randn(2, 1, 2, 2), SEGMENT.unsqueeze(1) == 1
    ),
    "DiceCELoss": lambda num: mlh.DiceCELoss(
        lambda_dice=num(0.5), lambda_ce=num(2), smooth=num(0.1), ignore_index=num(-100)
    )(_randn(2, 3, 2, 2), SEGMENT),
    "BatchLoader": lambda num: [b["x"] for b in mlh.BatchLoader(DATA, num(8), seed=num(3))],
    "BinaryFocalLoss": lambda num: mlh.BinaryFocalLoss(alpha=num(0.4), gamma=num(1.5))(
        _randn(2, 3), BINARY.double()
    ),
    "binary_focal_loss": lambda num: mlh.binary_focal_loss(
        _randn(2, 3), BINARY.double(), alpha=num(0.4), gamma=num(1.5)
    ),
    "FocalLoss": lambda num: mlh.FocalLoss(gamma=num(1.5), ignore_index=num(-100))(
        _randn(6, 4), LABELS
    ),
    "focal_loss": lambda num: mlh.focal_loss(
        _randn(6, 4), LABELS, gamma=num(1.5), ignore_index=num(3)
    ),
    "DistillationLoss": lambda num: mlh.DistillationLoss(temperature=num(3.0), alpha=num(0.25))(
        _randn(6, 4), _randn(6, 4, seed=1), LABELS
    ),
    "distillation_loss": lambda num: mlh.distillation_loss(
        _randn(6, 4), _randn(6, 4, seed=1), LABELS, temperature=num(3.0), alpha=num(0.25)
    ),
    "DWA": lambda num: [
        mlh.DWA(num(2), temperature=num(1.5)).step(torch.tensor(v)) for v in ([1.0, 2.0],)
    ],
    "EqualWeighting": lambda num: _drive(mlh.EqualWeighting(num(2)), _shared()),
    "Constraints": lambda num: _drive(
        mlh.Constraints([num(0.5)], lr=num(0.1), damping=num(2), init=num(1.0)), _shared()
    ),
    "FixedWeighting": lambda num: _drive(mlh.FixedWeighting([num(0.5), num(3)]), _shared()),
    "UncertaintyWeighting": lambda num: mlh.UncertaintyWeighting(num(2))(torch.tensor([1.0, 2.0])),
    "Weighting": lambda num: mlh.Weighting(num(2)).num_tasks,
    "GradNorm": _np_gradnorm,
    "MGDA": lambda num: (lambda s: _drive(mlh.MGDA(num(2), shared=s, max_iter=num(20)), s))(
        _shared()
    ),
    "PCGrad": lambda num: (lambda s: _drive(mlh.PCGrad(num(2), shared=s, seed=num(4)), s))(
        _shared()
    ),
    "GradientReversal": lambda num: mlh.GradientReversal(scale=num(0.5)).scale,
    "grad_reverse": lambda num: _with_grads(
        lambda x: mlh.grad_reverse(x, num(0.5)), torch.float64, _randn(3)
    )[0],
    "LossHistory": _np_history,
    "MultiHeadNet": lambda num: mlh.MultiHeadNet(
        num(4), {"a": num(2)}, hidden=(num(8),), dropout=num(0.25), seed=num(0)
    ).state_dict(),
    "TopKMoE": lambda num: mlh.TopKMoE(
        num(2), num(1), num(4), top_k=num(2), hidden=num(3), seed=num(0)
    ).state_dict(),
    "MultiTaskLoss": lambda num: (
        mlh.MultiTaskLoss({"a": F.mse_loss}, weights={"a": num(0.5)})(
            {"a": torch.ones(2)}, {"a": torch.zeros(2)}
        ).total
    ),
    "SmoothedGate": _np_gate,
    "balanced_accuracy": lambda num: mlh.balanced_accuracy(LABELS, LABELS.flip(0), num(4)),
    "confusion_matrix": lambda num: mlh.confusion_matrix(LABELS, LABELS.flip(0), num(4)),
    "per_class_precision": lambda num: mlh.per_class_precision(LABELS, LABELS.flip(0), num(4)),
    "per_class_recall": lambda num: mlh.per_class_recall(LABELS, LABELS.flip(0), num(4)),
    "class_weights": lambda num: mlh.class_weights(
        LABELS, num(5) - 1, method="effective", beta=num(0.9)
    ),
    "compare_times": _np_compare_times,
    "dann_scale": lambda num: mlh.dann_scale(num(0.5), gamma=num(10.0), final=num(2)),
    "ddp_mean": lambda num: [
        mlh.ddp_mean(torch.tensor(3.0), num(4.0)),
        mlh.ddp_mean(torch.tensor(3.0), num(4)),
    ],
    "fit": _np_fit,
    "grad_cosine": lambda num: mlh.grad_cosine(_randn(3, 4), eps=num(1e-8)),
    "mgda": lambda num: mlh.mgda(_randn(3, 4), max_iter=num(50), tol=num(1e-9)),
    "min_norm_weights": lambda num: mlh.min_norm_weights(
        _randn(3, 4), max_iter=num(50), tol=num(1e-9)
    ),
    "pcgrad": lambda num: mlh.pcgrad(_randn(3, 4), generator=num(5)),
    "make_domain_data": lambda num: mlh.make_domain_data(
        num(5),
        n_features=num(4),
        n_signal=num(2),
        shift=num(1.5),
        signal_shift=num(0.5),
        seed=num(1),
    ),
    "make_imbalanced_data": lambda num: mlh.make_imbalanced_data(
        num(40),
        proportions=(num(0.75), num(0.25)),
        n_features=num(3),
        class_sep=num(1.0),
        seed=num(1),
    ),
    "make_multitask_data": lambda num: mlh.make_multitask_data(
        num(5),
        n_features=num(4),
        n_classes=num(3),
        noise=num(0.2),
        label_noise=num(0.1),
        seed=num(1),
    ),
    "make_ring_data": lambda num: mlh.make_ring_data(
        num(5), modes=num(4), radius=num(1.5), std=num(0.1), seed=num(1)
    ),
    "make_segmentation_data": lambda num: mlh.make_segmentation_data(
        num(3), size=num(16), noise=num(0.5), presence=(num(0.5), num(0.5), num(0.5)), seed=num(1)
    ),
    "ring_centres": lambda num: mlh.ring_centres(num(4), radius=num(1.5)),
    "predictive_entropy": lambda num: mlh.predictive_entropy(_randn(3, 4, 2), dim=num(1)),
    "ramp": lambda num: mlh.ramp(num(3), start=num(1), length=num(4), low=num(0.5), high=num(2)),
    "seed_everything": lambda num: (mlh.seed_everything(num(3)), torch.rand(2)),
    "train_val_split": lambda num: mlh.train_val_split(DATA, val_fraction=num(0.25), seed=num(2)),
    "weight_decay_groups": lambda num: [
        g["weight_decay"] for g in mlh.weight_decay_groups(nn.Linear(2, 2), num(0.1))
    ],
    "plot_confusion_matrix": _np_plot_confusion,
    "plot_history": _np_plot_history,
    "plot_loss_distribution": _np_plot_distribution,
    "WorkerError": _np_worker_error,
    "load_balancing_loss": lambda num: mlh.load_balancing_loss(
        _randn(6, 4), top_k=num(2), num_experts=num(4)
    ),
    "t_quantile": lambda num: mlh.t_quantile(num(0.975), num(4)),
    "paired_difference": lambda num: tuple(
        mlh.paired_difference([num(1.0), num(2.5), num(2.0)], [0.5, 2.0, 1.0], confidence=num(0.9))
    ),
}
NO_NUMBER = "has no numeric hyperparameter"
NUMPY_EXCLUDED = {
    "load_penguins": "two bools, no number",
    "__version__": "a string",
    "exercises": "the chapters' exercise checks, tested in their own files",
    "Callback": "a base class with no arguments",
    "book_style": NO_NUMBER,
    "use_book_style": NO_NUMBER,
    "default_device": NO_NUMBER,
    "LossResult": "a record; its weights are whatever MultiTaskLoss stored",
    "assert_connected": NO_NUMBER,
    "assign_grad": NO_NUMBER,
    "flat_grad": NO_NUMBER,
    "per_loss_grads": NO_NUMBER,
    "evaluate": NO_NUMBER,
    "predict": NO_NUMBER,
    "unpack_loss": NO_NUMBER,
    "gaussian_kl": NO_NUMBER,
    "router_z_loss": NO_NUMBER,
    "PairedDifference": "a record; paired_difference makes it",
    "l1_penalty": NO_NUMBER,
    "l2_penalty": NO_NUMBER,
    "sample_weights": NO_NUMBER,
    "pareto_front": NO_NUMBER,
    "precision_recall_curve": NO_NUMBER,
    "saved_tensor_bytes": NO_NUMBER,
    "plot_precision_recall": NO_NUMBER,
    "plot_pareto_front": "points and labels only (its labels are another helper's, issue 20)",
    "launch": "starts processes (seconds); `nprocs` and `timeout` go through check_int/"
    "check_float, which the other cases cover",
}
NUMPY_XFAIL: dict[str, str] = {}


def test_numpy_table_is_complete():
    _check_complete(NUMPY_CASES, NUMPY_EXCLUDED, PUBLIC)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def _numpy(value: Any) -> Any:
    return np.int64(value) if isinstance(value, int) else np.float64(value)


def _numpy32(value: Any) -> Any:
    return np.int32(value) if isinstance(value, int) else np.float32(value)


@pytest.mark.parametrize("convert", [_numpy, _numpy32], ids=["np64", "np32"])
@pytest.mark.parametrize("name", _params(NUMPY_CASES, NUMPY_XFAIL))
def test_numpy_scalars_work_like_python_numbers(name, convert):
    torch.manual_seed(0)
    expected = NUMPY_CASES[name](lambda value: value)
    torch.manual_seed(0)
    got = NUMPY_CASES[name](convert)
    # np.float32(0.1) is not 0.1: compare with the Python number it stands for
    if convert is _numpy32:
        torch.manual_seed(0)
        expected = NUMPY_CASES[name](lambda value: type(value)(convert(value)))
    assert _same(got, expected), f"{name}: {got!r} vs {expected!r}"


# ============================================================================ 5. seeds
# A case takes a seed and returns a result that the seed determines.


def _seed_fit(seed: Any) -> Any:
    return _np_fit(lambda value: seed if value == 3 else value)


SEED_CASES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "TaskMixer": (
        "seed",
        lambda s: list(mlh.TaskMixer(MIXED, strategy="proportional", steps_per_epoch=40, seed=s)),
    ),
    "BatchLoader": ("seed", lambda s: [b["x"] for b in mlh.BatchLoader(DATA, 8, seed=s)]),
    "MultiHeadNet": (
        "seed",
        lambda s: mlh.MultiHeadNet(3, {"a": 2}, hidden=(4,), seed=s).state_dict(),
    ),
    "TopKMoE": ("seed", lambda s: mlh.TopKMoE(2, 1, 4, seed=s).state_dict()),
    "PCGrad": ("seed", lambda s: mlh.PCGrad(3, shared=_shared(), seed=s).generator.get_state()),
    # six tasks in three dimensions: many conflicts, so the order (the seed) matters
    "pcgrad": ("generator", lambda s: mlh.pcgrad(_randn(6, 3), generator=s)),
    "fit": ("seed", _seed_fit),
    "make_domain_data": ("seed", lambda s: mlh.make_domain_data(5, seed=s)),
    "make_imbalanced_data": ("seed", lambda s: mlh.make_imbalanced_data(30, seed=s)),
    "make_multitask_data": ("seed", lambda s: mlh.make_multitask_data(5, seed=s)),
    "make_ring_data": ("seed", lambda s: mlh.make_ring_data(5, seed=s)),
    "make_segmentation_data": (
        "seed",
        lambda s: mlh.make_segmentation_data(3, size=16, seed=s),
    ),
    "seed_everything": (
        "seed",
        lambda s: (mlh.seed_everything(s), torch.rand(2), np.random.rand(2).tolist()),
    ),
    "train_val_split": ("seed", lambda s: mlh.train_val_split(DATA, seed=s)),
}


def _takes_a_seed(obj: Any) -> bool:
    try:
        names = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in names or "generator" in names


SEED_EXCLUDED = {
    name: "takes no seed"
    for name in PUBLIC
    if name not in SEED_CASES and not _takes_a_seed(getattr(mlh, name))
}


def test_seed_table_is_complete():
    # every public callable with a `seed` or `generator` parameter is in the table
    _check_complete(SEED_CASES, SEED_EXCLUDED, PUBLIC)


GOOD_SEEDS = [0, 1, 2**63, 2**64 - 1, np.int64(7), np.uint64(2**64 - 1)]


@pytest.mark.parametrize("seed", GOOD_SEEDS, ids=repr)
@pytest.mark.parametrize("name", sorted(SEED_CASES))
def test_every_seed_in_range_works_and_repeats(name, seed):
    _, case = SEED_CASES[name]
    first, second = case(seed), case(seed)
    assert _same(first, second), name
    if isinstance(seed, np.integer):  # a NumPy int is the Python int it holds
        assert _same(first, case(int(seed))), name


@pytest.mark.parametrize("name", sorted(SEED_CASES))
def test_different_seeds_differ(name):
    _, case = SEED_CASES[name]
    assert not _same(case(0), case(1)), name


@pytest.mark.parametrize("seed", [2**64, -1, np.int64(-1), 2**70], ids=repr)
@pytest.mark.parametrize("name", sorted(SEED_CASES))
def test_seeds_out_of_range_are_refused_by_name(name, seed):
    argument, case = SEED_CASES[name]
    with pytest.raises(ValueError, match=f"`{argument}` must be"):
        case(seed)
