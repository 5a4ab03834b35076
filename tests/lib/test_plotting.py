"""The book's figures: histories, loss distributions, the metrics' plots, the style."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import multiloss_helpers as mlh

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _history(epochs=4, steps_per_epoch=3):
    h = mlh.LossHistory()
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            h.log_step({"total": 2.0 / (epoch + 1), "a": 1.0, "b": 1.0 / (epoch + 1)}, epoch=epoch)
        h.log_epoch({"total": 2.0 / (epoch + 1), "a": 1.0, "b": 1.0 / (epoch + 1)}, epoch=epoch)
        h.log_epoch(
            {"total": 2.5 / (epoch + 1), "a": 1.2, "b": 1.3 / (epoch + 1)}, epoch=epoch, split="val"
        )
    return h


def test_plot_history_one_line_per_component_and_split():
    ax = mlh.plot_history(_history(), ["a", "b"])
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["a (train)", "a (val)", "b (train)", "b (val)"]
    styles = {line.get_label(): line.get_linestyle() for line in ax.get_lines()}
    assert styles["a (train)"] == "-" and styles["a (val)"] == "--"
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss" and ax.get_title()
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), [1.0, 0.5, 1 / 3, 0.25])


def test_plot_history_step_level_with_smoothing_and_log_axis():
    ax = mlh.plot_history(_history(), ["b"], level="step", smooth=3, logy=True)
    raw, smooth = ax.get_lines()
    assert len(raw.get_ydata()) == 12 and len(smooth.get_ydata()) == 10
    np.testing.assert_allclose(smooth.get_ydata()[0], 1.0)
    assert ax.get_yscale() == "log"


def test_smoothing_window_longer_than_history():
    ax = mlh.plot_history(_history(epochs=1), ["a"], level="step", smooth=50)
    assert len(ax.get_lines()[-1].get_ydata()) == 1


def test_plot_history_draws_on_given_axes():
    _, ax = plt.subplots()
    assert mlh.plot_history(_history(), ax=ax, title="mine") is ax
    assert ax.get_title() == "mine"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"components": ["c"]}, ValueError, "must be drawn from the logged components"),
        ({"components": "a"}, TypeError, "must be a list of names"),
        ({"level": "batch"}, ValueError, "`level` must be 'epoch' or 'step'"),
        ({"splits": ["test"]}, ValueError, "`splits` must be a list"),
        ({"smooth": 0}, ValueError, "`smooth` must be >= 1"),
        ({"ax": "axes"}, TypeError, "`ax` must be a matplotlib Axes"),
    ],
)
def test_plot_history_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.plot_history(_history(), **kwargs)


def test_plot_history_needs_a_history():
    with pytest.raises(TypeError, match="`history` must be a LossHistory"):
        mlh.plot_history({"total": [1.0]})


@pytest.mark.parametrize("kind", ["hist", "ecdf"])
def test_loss_distribution_by_class(kind):
    losses = torch.rand(200) + 0.01
    labels = torch.randint(3, (200,))
    ax = mlh.plot_loss_distribution(
        losses, labels, kind=kind, class_names=["x", "y", "z"], log_scale=True
    )
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["x", "y", "z"]
    assert ax.get_xlabel() == "per-sample loss" and ax.get_xscale() == "log"


def test_loss_distribution_accepts_lists_and_arrays():
    ax = mlh.plot_loss_distribution([0.1, 0.2, 0.3, 0.2])
    assert ax.get_title() == "Per-sample losses"
    mlh.plot_loss_distribution(np.array([0.1, 0.5]), np.array([0, 1]), kind="ecdf")


def test_reduced_loss_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="reduction='none'"):
        mlh.plot_loss_distribution(torch.tensor(0.5))


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((torch.rand(5),), {"kind": "kde"}, ValueError, "`kind` must be 'hist' or 'ecdf'"),
        ((torch.zeros(0),), {}, ValueError, "`losses` is empty"),
        ((torch.tensor([0.0, 1.0]),), {"log_scale": True}, ValueError, "strictly positive"),
        ((torch.rand(5), torch.zeros(4, dtype=torch.long)), {}, ValueError, "one label per loss"),
        ((torch.rand(4), torch.rand(4)), {}, TypeError, "integer classes"),
        (
            (torch.rand(4), torch.tensor([0, 1, 2, 0])),
            {"class_names": ["a"]},
            ValueError,
            "name every class",
        ),
        ((torch.rand(4),), {"class_names": ["a"]}, ValueError, "`class_names` needs `labels`"),
        (("losses",), {}, TypeError, "`losses` must be a tensor"),
    ],
)
def test_loss_distribution_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.plot_loss_distribution(*args, **kwargs)


def test_book_style_is_opaque_and_scoped():
    before = mpl.rcParams["axes.facecolor"]
    with mlh.book_style():
        assert mpl.rcParams["figure.facecolor"] == "white"
        assert mpl.rcParams["savefig.transparent"] is False
    assert mpl.rcParams["axes.facecolor"] == before
    with mpl.rc_context():
        mlh.use_book_style()
        assert mpl.rcParams["savefig.facecolor"] == "white"


# The imbalance metrics' plots: confusion matrix, precision-recall curves, loss distributions.


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
