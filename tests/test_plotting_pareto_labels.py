"""plot_pareto_front takes its labels in the forms it takes its points (issue 20, D)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import multiloss_helpers as mlh

POINTS = torch.tensor([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0]])


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
    ax = mlh.plot_pareto_front(POINTS, labels=labels)
    assert [text.get_text() for text in ax.texts] == ["0.25", "0.5", "0.75"]
    plt.close(ax.figure)


def test_integer_tensor_labels_read_as_integers():
    ax = mlh.plot_pareto_front(POINTS, labels=torch.arange(3))
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
        mlh.plot_pareto_front(POINTS, labels=labels)
    plt.close("all")
