"""The imbalance metrics (class_weights and sample_weights: test_class_balance.py)."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh


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


def test_metric_plots():
    pred, target = torch.tensor([0, 1, 1, 0, 2]), torch.tensor([0, 1, 0, 0, 2])
    ax = mlh.plot_confusion_matrix(pred, target, class_names=["a", "b", "c"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="must name 3 classes"):
        mlh.plot_confusion_matrix(pred, target, class_names=["a"])
    ax = mlh.plot_precision_recall({"m": (torch.rand(5), torch.tensor([1, 0, 1, 0, 0]))})
    assert "AP" in ax.get_legend().get_texts()[0].get_text()
    with pytest.raises(TypeError, match="must be a pair"):
        mlh.plot_precision_recall({"m": torch.rand(5)})
