"""Imbalance metrics and their plots: regressions for silent wrong answers, devices, dtypes."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SCORE_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


@pytest.mark.parametrize("device", DEVICES)
def test_metrics_follow_the_labels_device(device):
    pred = torch.tensor([0, 1, 1, 0], device=device)
    target = torch.tensor([0, 1, 0, 0], device=device)
    assert mlh.confusion_matrix(pred, target).device.type == device
    recall = mlh.per_class_recall(pred, target)
    assert recall.device.type == device and recall.dtype == torch.float32
    torch.testing.assert_close(recall.cpu(), torch.tensor([2 / 3, 1.0]))


@pytest.mark.parametrize("device", DEVICES)
def test_plots_draw_device_tensors(device):
    pred = torch.tensor([0, 1, 1, 0], device=device)
    target = torch.tensor([0, 1, 0, 0], device=device)
    ax = mlh.plot_confusion_matrix(pred, target, normalize=False)
    assert [t.get_text() for t in ax.texts] == ["2", "1", "0", "1"]
    scores = torch.tensor([0.9, 0.8, 0.3, 0.1], device=device)
    positive = torch.tensor([1, 0, 1, 0], device=device)
    ax = mlh.plot_precision_recall({"m": (scores, positive)})
    assert "AP 0.833" in ax.get_legend().get_texts()[0].get_text()


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


def test_loss_distribution_refuses_ignored_labels():
    losses, labels = torch.rand(4), torch.tensor([0, 1, -1, 1])
    with pytest.raises(ValueError, match="class indices >= 0, got -1"):
        mlh.plot_loss_distribution(losses, labels)


def test_loss_distribution_refuses_nan_instead_of_dropping_it():
    with pytest.raises(ValueError, match="holds 1 NaN or infinite value"):
        mlh.plot_loss_distribution(torch.tensor([0.1, float("nan"), 0.3]))


def test_loss_distribution_orders_present_classes_with_names():
    losses = torch.tensor([0.1, 0.2, 0.3, 0.4])
    ax = mlh.plot_loss_distribution(
        losses, torch.tensor([2, 0, 2, 0]), class_names=["a", "b", "c"], kind="ecdf"
    )
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "c"]


def test_plots_moved_to_plotting_stay_importable_from_mlh():
    from multiloss_helpers import plotting

    assert mlh.plot_confusion_matrix is plotting.plot_confusion_matrix
    assert mlh.plot_precision_recall is plotting.plot_precision_recall
