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


# plot_pareto_front: the front filled and joined, dominated points hollow, labels, bad input.

PARETO_POINTS = [[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [2.0, 2.0], [4.0, 1.0], [4.0, 2.0]]


def _drawn(ax):
    """(filled points, hollow points, line) as NumPy arrays."""
    filled, hollow = [], []
    for collection in ax.collections:
        faces = collection.get_facecolors()
        (hollow if len(faces) == 0 or faces[0][3] == 0 else filled).append(collection.get_offsets())
    line = ax.lines[0].get_xydata()
    return np.concatenate(filled), np.concatenate(hollow) if hollow else np.empty((0, 2)), line


def test_front_is_filled_and_joined_and_dominated_points_are_hollow(device):
    points = torch.tensor(PARETO_POINTS, device=device)
    ax = mlh.plot_pareto_front(points, labels=list("abcdef"), names=("CE", "MSE"))
    filled, hollow, line = _drawn(ax)
    mask = mlh.pareto_front(torch.tensor(PARETO_POINTS))
    assert len(filled) == int(mask.sum()) == 4  # the duplicate (2, 2) is kept
    assert sorted(map(tuple, hollow.tolist())) == [(3.0, 3.0), (4.0, 2.0)]
    assert (np.diff(line[:, 0]) >= 0).all(), "the front is joined in order of objective 1"
    assert [t.get_text() for t in ax.texts] == list("abcdef")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("CE", "MSE")
    assert ax.get_title() == "Pareto front"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.int64])
def test_any_real_dtype_and_numpy_and_lists_give_the_same_front(dtype):
    for points in (torch.tensor(PARETO_POINTS).to(dtype), np.array(PARETO_POINTS), PARETO_POINTS):
        ax = mlh.plot_pareto_front(points)
        filled, hollow, _ = _drawn(ax)
        assert (len(filled), len(hollow)) == (4, 2)
        plt.close(ax.figure)


def test_draws_on_a_given_axes_with_colour_and_title_and_without_labels():
    _, ax = plt.subplots()
    out = mlh.plot_pareto_front([[1.0, 1.0], [0.5, 2.0]], ax=ax, color="C3", title="sweep")
    assert out is ax and ax.get_title() == "sweep" and not ax.texts
    _, hollow, _ = _drawn(ax)
    assert len(hollow) == 0  # both points are on the front, no empty scatter is drawn


def test_a_list_of_row_tensors_is_accepted():
    # a list of (2,) tensors, one per model, was refused as "not an (N, 2) array"
    rows = [torch.tensor(p, requires_grad=True) for p in PARETO_POINTS]
    filled, hollow, _ = _drawn(mlh.plot_pareto_front(rows))
    assert (len(filled), len(hollow)) == (4, 2)


def test_a_single_point_is_its_own_front():
    filled, hollow, _ = _drawn(mlh.plot_pareto_front(torch.tensor([[0.3, 0.7]])))
    assert len(filled) == 1 and len(hollow) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"points": "points"}, TypeError, "`points` must be an \\(N, 2\\) array"),
        ({"points": [[1.0, "a"]]}, TypeError, "`points` must be an \\(N, 2\\) array"),
        ({"points": torch.ones(3, 3)}, ValueError, "shape \\(N, 2\\).*got \\(3, 3\\)"),
        ({"points": torch.ones(2)}, ValueError, "shape \\(N, 2\\)"),
        ({"points": torch.ones(0, 2)}, ValueError, "N >= 1"),
        ({"points": torch.tensor([[1.0, float("nan")]])}, ValueError, "must be finite"),
        ({"points": torch.tensor([[1.0, float("inf")]])}, ValueError, "must be finite"),
        ({"points": torch.ones(2, 2, dtype=torch.bool)}, TypeError, "real numbers"),
        ({"points": torch.ones(2, 2), "labels": ["a"]}, ValueError, "one entry per point \\(2\\)"),
        ({"points": torch.ones(2, 2), "labels": "ab"}, TypeError, "`labels` must be a sequence"),
        ({"points": torch.ones(2, 2), "names": "xy"}, TypeError, "`names` must be a pair"),
        ({"points": torch.ones(2, 2), "ax": "axes"}, TypeError, "`ax` must be a matplotlib Axes"),
    ],
)
def test_bad_input_is_refused_with_a_message_that_names_the_argument(kwargs, error, match):
    points = kwargs.pop("points")
    with pytest.raises(error, match=match):
        mlh.plot_pareto_front(points, **kwargs)


LABELLED_POINTS = torch.tensor([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0]])


@pytest.mark.parametrize(
    "labels",
    [
        torch.tensor([0.25, 0.5, 0.75]),
        np.array([0.25, 0.5, 0.75]),
        [0.25, 0.5, 0.75],
        torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64),
    ],
    ids=["tensor", "numpy", "list", "float64 tensor"],
)
def test_labels_as_tensor_array_or_list_write_the_same_texts(labels):
    ax = mlh.plot_pareto_front(LABELLED_POINTS, labels=labels)
    assert [text.get_text() for text in ax.texts] == ["0.25", "0.5", "0.75"]
    plt.close(ax.figure)


def test_integer_tensor_labels_read_as_integers():
    ax = mlh.plot_pareto_front(LABELLED_POINTS, labels=torch.arange(3))
    assert [text.get_text() for text in ax.texts] == ["0", "1", "2"]
    plt.close(ax.figure)


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        (torch.zeros(2), ValueError, r"one entry per point \(3\), got 2"),
        (np.zeros((3, 1)), ValueError, r"`labels` must be 1-D, .* got shape \(3, 1\)"),
        (torch.tensor(1.0), ValueError, r"`labels` must be 1-D"),
        (5, TypeError, "`labels` must be a sequence, a 1-D tensor or a 1-D array"),
    ],
)
def test_bad_labels_are_named(labels, error, match):
    with pytest.raises(error, match=match):
        mlh.plot_pareto_front(LABELLED_POINTS, labels=labels)
    plt.close("all")
