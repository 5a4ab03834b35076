"""mlh.dice_loss, binary_dice_loss, DiceLoss, BinaryDiceLoss and DiceCELoss.

The values are compared with MONAI's DiceLoss and DiceCELoss (a test-only dependency,
requirements-dev.txt) over a matrix of options; the package's own rules (ignore_index,
dtypes, devices, second derivatives, -inf logits, bad input) are tested without MONAI.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from helpers.devices import device_fixture, dtypes_for  # noqa: F401  (the fixture is `device`)
from torch.autograd import gradcheck, gradgradcheck

import multiloss_helpers as mlh

INF = float("inf")


def _case(spatial: tuple[int, ...], num_classes: int = 4, dtype=torch.float64, seed: int = 0):
    """Logits and targets with an empty class: class 3 is absent from image 0's target."""
    gen = torch.Generator().manual_seed(seed)
    logits = (2 * torch.randn(3, num_classes, *spatial, generator=gen)).to(dtype)
    target = torch.randint(num_classes, (3, *spatial), generator=gen)
    target[0][target[0] == num_classes - 1] = 0
    return logits, target


def _naive(logits, target, *, smooth=1e-5, per_image=True, valid=None):
    """1 - (2 I + s) / (P + T + s) from a one-hot target, with a pixel mask."""
    num_classes = logits.shape[1]
    prob = torch.softmax(logits, 1)
    onehot = F.one_hot(target.clamp(0, num_classes - 1), num_classes).movedim(-1, 1).to(prob)
    if valid is not None:
        mask = valid.unsqueeze(1).to(prob)
        prob, onehot = prob * mask, onehot * mask
    dims = tuple(range(2, logits.dim())) if per_image else (0, *range(2, logits.dim()))
    inter, psum, tsum = (prob * onehot).sum(dims), prob.sum(dims), onehot.sum(dims)
    return 1 - (2 * inter + smooth) / (psum + tsum + smooth)


# ------------------------------------------------------------------------------ against MONAI
MATRIX = list(
    itertools.product(
        [True, False],  # per_image
        [True, False],  # include_background
        [False, True],  # weight
        ["mean", "sum", "none"],
        [torch.float32, torch.float64],
        [(5, 6), (3, 4, 5)],
    )
)


@pytest.mark.parametrize(
    ("per_image", "background", "weighted", "reduction", "dtype", "spatial"), MATRIX
)
def test_dice_loss_equals_monai(per_image, background, weighted, reduction, dtype, spatial):
    monai = pytest.importorskip("monai.losses")
    logits, target = _case(spatial, dtype=dtype)
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=dtype) if weighted else None
    theirs = monai.DiceLoss(
        softmax=True,
        to_onehot_y=True,
        include_background=background,
        smooth_nr=1e-3,
        smooth_dr=1e-3,
        batch=not per_image,
        weight=None if weight is None else (weight if background else weight[1:]),
        reduction=reduction,
    )(logits, target.unsqueeze(1))
    ours = mlh.dice_loss(
        logits,
        target,
        smooth=1e-3,
        per_image=per_image,
        include_background=background,
        weight=weight,
        reduction=reduction,
    )
    assert ours.dtype == dtype
    if reduction == "none":
        classes = 4 if background else 3
        assert ours.shape == ((3, classes) if per_image else (classes,))
        theirs = theirs.reshape(ours.shape)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize(
    ("per_image", "reduction", "spatial"),
    list(itertools.product([True, False], ["mean", "sum", "none"], [(5, 6), (3, 4, 5)])),
)
def test_binary_dice_loss_equals_monai(per_image, reduction, spatial):
    monai = pytest.importorskip("monai.losses")
    gen = torch.Generator().manual_seed(1)
    logits = 2 * torch.randn(3, 2, *spatial, generator=gen, dtype=torch.float64)
    target = torch.rand(3, 2, *spatial, generator=gen, dtype=torch.float64) < 0.3
    target[0, 1] = False  # an empty mask
    theirs = monai.DiceLoss(sigmoid=True, batch=not per_image, reduction=reduction)(
        logits, target.double()
    )
    ours = mlh.binary_dice_loss(logits, target, per_image=per_image, reduction=reduction)
    torch.testing.assert_close(ours, theirs.reshape(ours.shape))
    same = mlh.binary_dice_loss(logits, target.double(), per_image=per_image, reduction=reduction)
    torch.testing.assert_close(same, ours)


@pytest.mark.parametrize(
    ("per_image", "background", "weighted", "reduction", "lambdas"),
    list(
        itertools.product(
            [True, False], [True, False], [False, True], ["mean", "sum"], [(1.0, 1.0), (0.3, 2.0)]
        )
    ),
)
def test_dice_ce_loss_equals_monai(per_image, background, weighted, reduction, lambdas):
    monai = pytest.importorskip("monai.losses")
    logits, target = _case((5, 6))
    weight = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=torch.float64) if weighted else None
    options = dict(
        include_background=background,
        lambda_dice=lambdas[0],
        lambda_ce=lambdas[1],
        weight=weight,
        reduction=reduction,
    )
    theirs = monai.DiceCELoss(
        softmax=True,
        to_onehot_y=True,
        batch=not per_image,
        smooth_nr=1e-4,
        smooth_dr=1e-4,
        **options,
    )(logits, target.unsqueeze(1))
    ours = mlh.DiceCELoss(per_image=per_image, smooth=1e-4, **options)(logits, target)
    torch.testing.assert_close(ours, theirs)


def test_ignore_index_equals_monai_for_a_value_outside_the_classes():
    monai = pytest.importorskip("monai.losses")
    logits, target = _case((6, 5))
    target[1, :2] = 255
    theirs = monai.DiceLoss(softmax=True, to_onehot_y=True, ignore_index=255, reduction="none")
    ours = mlh.dice_loss(logits, target, ignore_index=255, reduction="none")
    torch.testing.assert_close(ours, theirs(logits, target.unsqueeze(1)).reshape(3, 4))


# ------------------------------------------------------------------------ mlh's own semantics
@pytest.mark.parametrize("per_image", [True, False])
def test_ignored_pixels_count_in_no_sum_and_get_no_gradient(per_image):
    logits, target = _case((6, 5))
    target[0, :3] = -100
    target[2, 5] = -100  # the last row of image 2
    valid = target != -100
    logits[~valid.unsqueeze(1).expand_as(logits)] = float("nan")  # poison the ignored pixels
    x = logits.clone().requires_grad_(True)
    ours = mlh.dice_loss(x, target, ignore_index=-100, per_image=per_image, reduction="none")
    clean = torch.where(valid.unsqueeze(1), logits, 0.0)
    expected = _naive(clean, target, per_image=per_image, valid=valid)
    torch.testing.assert_close(ours, expected)
    (grad,) = torch.autograd.grad(ours.sum(), x)
    assert torch.isfinite(grad).all()
    assert (grad.movedim(1, -1)[~valid] == 0).all()
    # the same as the loss of the valid pixels alone: image 2 without its last row
    alone = mlh.dice_loss(logits[2:, :, :5].detach(), target[2:, :5], reduction="none")
    if per_image:
        torch.testing.assert_close(ours[2], alone[0])


def test_dice_ce_loss_with_ignore_index_is_the_sum_of_both_masked_terms():
    logits, target = _case((6, 5))
    target[1, 2:] = 255
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=torch.float64)
    loss = mlh.DiceCELoss(lambda_dice=0.7, lambda_ce=1.3, weight=weight, ignore_index=255)
    dice = mlh.dice_loss(logits, target, weight=weight, ignore_index=255)
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=255)
    torch.testing.assert_close(loss(logits, target), 0.7 * dice + 1.3 * ce)


def test_an_absent_class_that_is_not_predicted_gives_zero_not_nan():
    logits, target = _case((4, 4))
    target[target == 2] = 1
    logits[:, 2] = -INF  # class 2: in neither the target nor the prediction
    x = logits.clone().requires_grad_(True)
    loss = mlh.dice_loss(x, target, reduction="none")
    assert torch.equal(loss[:, 2], torch.zeros(3, dtype=loss.dtype))
    (grad,) = torch.autograd.grad(loss.mean(), x)
    assert torch.isfinite(grad).all() and (grad[:, 2] == 0).all()
    # the other classes are the Dice of the problem without class 2
    keep = [0, 1, 3]
    remapped = torch.tensor([0, 1, 1, 2])[target]
    without = mlh.dice_loss(logits[:, keep], remapped, reduction="none")
    torch.testing.assert_close(loss[:, keep], without)


def test_binary_minus_inf_logits_are_a_certain_empty_mask():
    # channel 1 is empty in the target and masked with -inf: exactly 0, no gradient
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 2, 3, 3, generator=gen, dtype=torch.float64)
    logits[:, 1] = -INF
    target = torch.rand(2, 2, 3, 3, generator=gen, dtype=torch.float64) < 0.5
    target[:, 1] = False
    x = logits.clone().requires_grad_(True)
    loss = mlh.binary_dice_loss(x, target, reduction="none")
    assert torch.equal(loss[:, 1], torch.zeros(2, dtype=loss.dtype))
    (grad,) = torch.autograd.grad(loss.sum(), x)
    assert torch.isfinite(grad).all() and (grad[:, 1] == 0).all()
    alone = mlh.binary_dice_loss(logits[:, :1], target[:, :1], reduction="none")
    torch.testing.assert_close(loss[:, :1], alone)


def test_an_absent_class_with_moderate_logits_is_stuck_at_one():
    logits, target = _case((8, 8))
    target[target == 3] = 0
    x = (logits.clone() - 5 * F.one_hot(torch.tensor(3), 4).view(1, 4, 1, 1)).requires_grad_(True)
    loss = mlh.dice_loss(x, target, reduction="none")
    # about 0.4 probability mass over 64 pixels against a smoothing of 1e-5
    assert (loss[:, 3] > 0.9999).all(), loss[:, 3]
    (grad,) = torch.autograd.grad(loss[:, 3].sum(), x)
    assert grad.abs().max() < 1e-4
    bigger = mlh.dice_loss(x, target, smooth=1.0, reduction="none")[:, 3]
    assert (bigger < 0.9).all(), bigger


def test_weight_multiplies_each_class_and_mean_divides_by_the_entries():
    logits, target = _case((5, 5))
    weight = torch.tensor([0.0, 1.0, 2.0, 4.0], dtype=torch.float64)
    plain = mlh.dice_loss(logits, target, reduction="none")
    weighted = mlh.dice_loss(logits, target, weight=weight, reduction="none")
    torch.testing.assert_close(weighted, plain * weight)
    mean = mlh.dice_loss(logits, target, weight=weight)
    torch.testing.assert_close(mean, (plain * weight).sum() / plain.numel())


def test_a_weight_that_requires_grad_gets_its_gradient():
    logits, target = _case((4, 4))
    weight = torch.ones(4, dtype=torch.float64, requires_grad=True)
    mlh.dice_loss(logits, target, weight=weight, reduction="sum").backward()
    expected = mlh.dice_loss(logits, target, reduction="none").sum(0)
    torch.testing.assert_close(weight.grad, expected)


# ------------------------------------------------------------------------- derivatives
@pytest.mark.parametrize(
    ("per_image", "ignore", "background", "spatial"),
    list(itertools.product([True, False], [None, 9], [True, False], [(3, 2), (2, 2, 2)])),
)
def test_gradcheck_and_gradgradcheck(per_image, ignore, background, spatial):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, *spatial, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(3, (2, *spatial), generator=gen)
    if ignore is not None:
        target.view(-1)[1] = ignore
    weight = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)

    def fn(logits):
        return mlh.dice_loss(
            logits,
            target,
            smooth=0.1,
            per_image=per_image,
            include_background=background,
            weight=weight,
            ignore_index=ignore,
            reduction="none",
        )

    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("per_image", [True, False])
def test_binary_and_dice_ce_gradcheck(per_image):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 2, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    soft = torch.rand(2, 2, 3, 2, generator=gen, dtype=torch.float64)

    def binary(logits):
        return mlh.binary_dice_loss(logits, soft, per_image=per_image, reduction="none")

    labels = torch.randint(2, (2, 3, 2), generator=gen)
    dice_ce = mlh.DiceCELoss(per_image=per_image, lambda_ce=0.5)
    for fn in (binary, lambda logits: dice_ce(logits, labels)):
        assert gradcheck(fn, (x,))
        assert gradgradcheck(fn, (x,))


def test_fast_backward_equals_autograd_through_the_naive_form():
    logits, target = _case((16, 16), num_classes=5, seed=7)
    weight = torch.rand(5, dtype=torch.float64)
    for per_image in (True, False):
        x = logits.clone().requires_grad_(True)
        y = logits.clone().requires_grad_(True)
        mlh.dice_loss(x, target, per_image=per_image, weight=weight).backward()
        (_naive(y, target, per_image=per_image) * weight).mean().backward()
        torch.testing.assert_close(x.grad, y.grad)


# ------------------------------------------------------------------- extremes and dtypes
@pytest.mark.parametrize("scale", [1e4, 1e30, 3e38])
def test_extreme_logits_give_finite_values_and_gradients(scale):
    x = torch.tensor([[[scale, -scale]], [[-scale, scale]], [[0.0, -scale]]]).unsqueeze(0)
    x = x.movedim(1, 1).reshape(1, 3, 1, 2).requires_grad_(True)
    target = torch.tensor([[[0, 2]]])
    loss = mlh.dice_loss(x, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()
    b = torch.tensor([[[[scale, -scale, 0.0]]]], requires_grad=True)
    value = mlh.binary_dice_loss(b, torch.tensor([[[[1.0, 1.0, 0.0]]]]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(b.grad).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_in_float32_inside_input_dtype_out(dtype):
    logits, target = _case((6, 6))
    low = logits.to(dtype).requires_grad_(True)
    wide = low.detach().double().requires_grad_(True)
    for fn in (
        lambda x: mlh.dice_loss(x, target),
        lambda x: mlh.DiceCELoss()(x, target),
        lambda x: mlh.binary_dice_loss(x[:, :2], target.unsqueeze(1).expand(3, 2, 6, 6) == 1),
    ):
        low.grad = wide.grad = None
        out, ref = fn(low), fn(wide)
        assert out.dtype == dtype
        out.backward()
        ref.backward()
        eps = torch.finfo(dtype).eps
        assert (out.double() - ref).abs() <= 1.01 * eps * ref.abs() + 1e-6
        assert low.grad.dtype == dtype
        torch.testing.assert_close(low.grad.double(), wide.grad, rtol=eps, atol=1e-6)


def test_on_each_device_equals_the_cpu(device):
    for dtype in dtypes_for(device):
        if dtype in (torch.float16, torch.bfloat16):
            continue
        logits, target = _case((5, 5), dtype=dtype)
        target[0, 0] = 255
        x = logits.to(device, copy=True).requires_grad_(True)
        loss = mlh.DiceCELoss(ignore_index=255, per_image=False)(x, target.to(device))
        loss.backward()
        y = logits.clone().requires_grad_(True)
        expected = mlh.DiceCELoss(ignore_index=255, per_image=False)(y, target)
        expected.backward()
        assert loss.device.type == device.type
        torch.testing.assert_close(loss.cpu(), expected)
        torch.testing.assert_close(x.grad.cpu(), y.grad)


# ------------------------------------------------------------------------------- modules
def test_modules_call_the_functions_and_keep_weight_as_a_buffer():
    logits, target = _case((4, 4))
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    module = mlh.DiceLoss(weight=weight, include_background=False, per_image=False)
    assert "weight" in dict(module.named_buffers())
    expected = mlh.dice_loss(
        logits, target, weight=weight, include_background=False, per_image=False
    )
    assert torch.equal(module(logits, target), expected)
    binary = mlh.BinaryDiceLoss(smooth=0.5, reduction="sum")
    mask = target.unsqueeze(1) == 1
    assert torch.equal(
        binary(logits[:, :1], mask),
        mlh.binary_dice_loss(logits[:, :1], mask, smooth=0.5, reduction="sum"),
    )
    assert "DiceCELoss(lambda_dice=1.0" in repr(mlh.DiceCELoss())


# ------------------------------------------------------------------------------ bad input
GOOD_LOGITS = torch.zeros(2, 3, 4, 4)
GOOD_TARGET = torch.zeros(2, 4, 4, dtype=torch.long)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"logits": [1.0]}, TypeError, "`logits` must be a torch.Tensor"),
        ({"logits": torch.zeros(2, 3, 4, dtype=torch.long)}, TypeError, "`logits` must be a real"),
        ({"logits": torch.zeros(2, 3)}, ValueError, "at least one spatial dimension"),
        ({"logits": torch.zeros(2, 1, 4, 4)}, ValueError, "C >= 2"),
        ({"target": GOOD_TARGET.float()}, TypeError, "integer class indices"),
        ({"target": GOOD_TARGET.bool()}, TypeError, "integer class indices"),
        ({"target": GOOD_TARGET[:, :3]}, ValueError, r"must have shape \(2, 4, 4\)"),
        ({"target": GOOD_TARGET + 3}, ValueError, r"class index 3, outside \[0, 3\)"),
        ({"target": GOOD_TARGET - 1}, ValueError, r"class index -1, outside"),
        ({"smooth": 0.0}, ValueError, "`smooth` must be > 0"),
        ({"smooth": "1"}, TypeError, "`smooth` must be a real number"),
        ({"per_image": 1}, TypeError, "`per_image` must be a bool"),
        ({"include_background": None}, TypeError, "`include_background` must be a bool"),
        ({"weight": [1.0, 1.0, 1.0]}, TypeError, "`weight` must be a torch.Tensor"),
        ({"weight": torch.ones(2)}, ValueError, r"shape \(3,\)"),
        ({"weight": torch.tensor([1.0, -1.0, 1.0])}, ValueError, "non-negative"),
        ({"weight": torch.ones(3, dtype=torch.long)}, TypeError, "`weight` must be a real"),
        ({"ignore_index": 1}, ValueError, "must not be a class index"),
        ({"ignore_index": 1.5}, TypeError, "`ignore_index` must be an int"),
        ({"reduction": "avg"}, ValueError, "`reduction` must be one of"),
    ],
)
def test_dice_loss_refuses_bad_input_by_name(kwargs, error, match):
    arguments = {"logits": GOOD_LOGITS, "target": GOOD_TARGET, **kwargs}
    logits, target = arguments.pop("logits"), arguments.pop("target")
    with pytest.raises(error, match=match):
        mlh.dice_loss(logits, target, **arguments)


def test_ignore_index_is_accepted_only_where_it_is_outside_the_classes():
    target = GOOD_TARGET.clone()
    target[0, 0, 0] = -100
    with pytest.raises(ValueError, match="class index -100"):
        mlh.dice_loss(GOOD_LOGITS, target)
    assert torch.isfinite(mlh.dice_loss(GOOD_LOGITS, target, ignore_index=-100))


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        (torch.zeros(2, 3, 4, 4, dtype=torch.long), TypeError, "float or bool mask"),
        (torch.zeros(2, 3, 4), ValueError, "the logits' shape"),
        (torch.full((2, 3, 4, 4), 1.5), ValueError, r"in \[0, 1\], got 1.5"),
        (torch.full((2, 3, 4, 4), float("nan")), ValueError, r"in \[0, 1\]"),
        ("mask", TypeError, "`target` must be a float or bool tensor"),
    ],
)
def test_binary_dice_loss_refuses_bad_targets(target, error, match):
    with pytest.raises(error, match=match):
        mlh.binary_dice_loss(GOOD_LOGITS, target)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lambda_dice": -1.0}, ValueError, "`lambda_dice` must be >= 0"),
        ({"lambda_ce": "1"}, TypeError, "`lambda_ce` must be a real number"),
        ({"reduction": "none"}, ValueError, "`reduction` must be one of"),
        ({"weight": [1.0]}, TypeError, "`weight` must be a torch.Tensor"),
        ({"smooth": -1.0}, ValueError, "`smooth` must be > 0"),
    ],
)
def test_dice_ce_loss_refuses_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.DiceCELoss(**kwargs)
