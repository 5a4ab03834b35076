"""The imbalance metrics: the confusion matrix, per-class recall and precision, balanced
accuracy and the precision-recall curve (their plots: test_plotting.py; class_weights and
sample_weights: test_class_balance.py)."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SCORE_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def test_confusion_matrix_and_recall_precision():
    pred = torch.tensor([0, 0, 1, 1, 2, 2, 2])
    target = torch.tensor([0, 1, 1, 1, 2, 0, 2])
    cm = mlh.confusion_matrix(pred, target)
    assert cm.tolist() == [[1, 0, 1], [1, 2, 0], [0, 0, 2]]
    torch.testing.assert_close(mlh.per_class_recall(pred, target), torch.tensor([0.5, 2 / 3, 1.0]))
    torch.testing.assert_close(
        mlh.per_class_precision(pred, target), torch.tensor([0.5, 1.0, 2 / 3])
    )
    assert mlh.balanced_accuracy(pred, target) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)


def test_majority_classifier_is_exposed_by_balanced_accuracy():
    target = torch.tensor([0] * 95 + [1] * 5)
    pred = torch.zeros(100, dtype=torch.long)
    assert (pred == target).float().mean() == 0.95
    assert mlh.balanced_accuracy(pred, target) == 0.5
    assert torch.isnan(mlh.per_class_precision(pred, target)[1])


def test_precision_recall_curve_by_hand_and_ties():
    scores = torch.tensor([0.9, 0.8, 0.8, 0.1])
    target = torch.tensor([1, 0, 1, 0])
    curve = mlh.precision_recall_curve(scores, target)
    torch.testing.assert_close(curve["recall"], torch.tensor([0.5, 1.0, 1.0]))
    torch.testing.assert_close(curve["precision"], torch.tensor([1.0, 2 / 3, 0.5]))
    assert float(curve["average_precision"]) == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)


def test_perfect_ranking_has_average_precision_one():
    target = (torch.rand(200) < 0.1).long()
    target[0] = 1
    curve = mlh.precision_recall_curve(target.float() + 0.01 * torch.rand(200), target)
    assert float(curve["average_precision"]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("fn", "args", "error", "match"),
    [
        ("confusion_matrix", (torch.randn(3, 2), torch.tensor([0, 1, 0])), TypeError, "argmax"),
        (
            "confusion_matrix",
            (torch.tensor([0, 1]), torch.tensor([0, 1, 0])),
            ValueError,
            "same shape",
        ),
        (
            "confusion_matrix",
            (torch.tensor([0, 3]), torch.tensor([0, 1])),
            ValueError,
            "label 3 is >= `num_classes`",
        ),
        (
            "precision_recall_curve",
            (torch.rand(3), torch.tensor([0, 0, 0])),
            ValueError,
            "no positive sample",
        ),
        (
            "precision_recall_curve",
            (torch.rand(3), torch.tensor([0, 2, 1])),
            ValueError,
            "binary labels",
        ),
        (
            "precision_recall_curve",
            (torch.tensor([1, 0, 1]), torch.tensor([0, 1, 1])),
            TypeError,
            "floating-point",
        ),
    ],
)
def test_metric_bad_inputs(fn, args, error, match):
    kwargs = {"num_classes": 2} if "num_classes" in match else {}
    with pytest.raises(error, match=match):
        getattr(mlh, fn)(*args, **kwargs)


@pytest.mark.parametrize("device", DEVICES)
def test_metrics_follow_the_labels_device(device):
    pred = torch.tensor([0, 1, 1, 0], device=device)
    target = torch.tensor([0, 1, 0, 0], device=device)
    assert mlh.confusion_matrix(pred, target).device.type == device
    recall = mlh.per_class_recall(pred, target)
    assert recall.device.type == device and recall.dtype == torch.float32
    torch.testing.assert_close(recall.cpu(), torch.tensor([2 / 3, 1.0]))


@pytest.mark.parametrize("dtype", SCORE_DTYPES)
def test_precision_recall_curve_over_score_dtypes(dtype):
    scores = torch.tensor([0.9, 0.8, 0.3, 0.1], dtype=dtype)
    curve = mlh.precision_recall_curve(scores, torch.tensor([1, 0, 1, 0]))
    assert curve["precision"].dtype == torch.float32 and curve["thresholds"].dtype == dtype
    assert float(curve["average_precision"]) == pytest.approx(5 / 6, abs=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_scores_are_refused_not_ranked(bad):
    with pytest.raises(ValueError, match="`scores` must be finite"):
        mlh.precision_recall_curve(torch.tensor([0.9, bad, 0.1]), torch.tensor([1, 0, 1]))


def test_bool_labels_are_refused():
    with pytest.raises(TypeError, match=r"`pred` must hold .*torch\.bool; a bool tensor is a mask"):
        mlh.confusion_matrix(torch.tensor([True, False]), torch.tensor([1, 0]))


def test_stray_label_does_not_allocate_a_huge_matrix():
    with pytest.raises(ValueError, match=r"too large .*largest label is 50000000"):
        mlh.confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 50_000_000]))


def test_negative_label_named():
    with pytest.raises(ValueError, match="labels must be >= 0, got a label -1"):
        mlh.per_class_recall(torch.tensor([0, 1]), torch.tensor([-1, 1]))


def test_labels_on_two_devices_are_refused():
    if not torch.cuda.is_available():
        pytest.skip("needs a second device")
    with pytest.raises(ValueError, match="one device"):
        mlh.confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 1], device="cuda"))
