"""plot_pareto_front: the front filled and joined, dominated points hollow, bad input refused."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import multiloss_helpers as mlh

POINTS = [[1.0, 4.0], [2.0, 2.0], [3.0, 3.0], [2.0, 2.0], [4.0, 1.0], [4.0, 2.0]]


def _drawn(ax):
    """(filled points, hollow points, line) as NumPy arrays."""
    filled, hollow = [], []
    for collection in ax.collections:
        faces = collection.get_facecolors()
        (hollow if len(faces) == 0 or faces[0][3] == 0 else filled).append(collection.get_offsets())
    line = ax.lines[0].get_xydata()
    return np.concatenate(filled), np.concatenate(hollow) if hollow else np.empty((0, 2)), line


def test_front_is_filled_and_joined_and_dominated_points_are_hollow(device):
    points = torch.tensor(POINTS, device=device)
    ax = mlh.plot_pareto_front(points, labels=list("abcdef"), names=("CE", "MSE"))
    filled, hollow, line = _drawn(ax)
    mask = mlh.pareto_front(torch.tensor(POINTS))
    assert len(filled) == int(mask.sum()) == 4  # the duplicate (2, 2) is kept
    assert sorted(map(tuple, hollow.tolist())) == [(3.0, 3.0), (4.0, 2.0)]
    assert (np.diff(line[:, 0]) >= 0).all(), "the front is joined in order of objective 1"
    assert [t.get_text() for t in ax.texts] == list("abcdef")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("CE", "MSE")
    assert ax.get_title() == "Pareto front"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.int64])
def test_any_real_dtype_and_numpy_and_lists_give_the_same_front(dtype):
    for points in (torch.tensor(POINTS).to(dtype), np.array(POINTS), POINTS):
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
    rows = [torch.tensor(p, requires_grad=True) for p in POINTS]
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
