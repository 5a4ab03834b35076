"""class_weights, sample_weights and the imbalance metrics."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh


def test_balanced_is_n_over_c_times_count():
    target = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    weights = mlh.class_weights(target)
    torch.testing.assert_close(weights, torch.tensor([100 / (3 * 90), 100 / (3 * 9), 100 / 3]))
    counts = torch.bincount(target).float()
    torch.testing.assert_close((weights * counts), torch.full((3,), 100 / 3))  # equal total weight


def test_inverse_and_effective_sum_to_c_and_order_by_rarity():
    target = torch.tensor([0] * 500 + [1] * 50 + [2] * 5 + [3] * 1)
    for method in ("inverse", "effective"):
        weights = mlh.class_weights(target, method=method)
        assert weights.sum().item() == pytest.approx(4.0, rel=1e-5)
        assert torch.all(weights[1:] > weights[:-1])


def test_effective_number_limits():
    target = torch.tensor([0] * 100 + [1] * 10)
    torch.testing.assert_close(
        mlh.class_weights(target, method="effective", beta=0.0), torch.ones(2)
    )
    near_inverse = mlh.class_weights(target, method="effective", beta=0.999999)
    torch.testing.assert_close(
        near_inverse, mlh.class_weights(target, method="inverse"), rtol=1e-3, atol=0
    )
    beta = 0.9
    raw = torch.tensor([(1 - beta) / (1 - beta**100), (1 - beta) / (1 - beta**10)])
    torch.testing.assert_close(
        mlh.class_weights(target, method="effective", beta=beta), raw * 2 / raw.sum()
    )


def test_equal_classes_give_equal_weights():
    target = torch.arange(4).repeat(25)
    for method in ("balanced", "inverse", "effective"):
        torch.testing.assert_close(mlh.class_weights(target, method=method), torch.ones(4))


def test_weights_of_one_change_nothing_in_the_loss():
    logits, target = torch.randn(20, 4), torch.arange(4).repeat(5)
    weights = mlh.class_weights(target)
    torch.testing.assert_close(
        torch.nn.functional.cross_entropy(logits, target, weight=weights),
        torch.nn.functional.cross_entropy(logits, target),
    )
    torch.testing.assert_close(
        mlh.focal_loss(logits, target, weight=weights), mlh.focal_loss(logits, target)
    )


@pytest.mark.parametrize(
    ("target", "kwargs", "error", "match"),
    [
        (torch.tensor([0, 0, 2]), {}, ValueError, "class 1 has no sample"),
        (torch.tensor([0, 1]), {"num_classes": 3}, ValueError, "class 2 has no sample"),
        (
            torch.tensor([0, 1, 3]),
            {"num_classes": 3},
            ValueError,
            "holds class 3, but `num_classes` is 3",
        ),
        (torch.tensor([0, -1]), {}, ValueError, "negative class label"),
        (torch.tensor([0.0, 1.0]), {}, TypeError, "integer class labels"),
        (torch.tensor([0, 1]), {"method": "sqrt"}, ValueError, "`method` must be one of"),
        (
            torch.tensor([0, 1]),
            {"method": "effective", "beta": 1.0},
            ValueError,
            "`beta` must be < 1",
        ),
        (torch.tensor([], dtype=torch.long), {}, ValueError, "`target` is empty"),
        ([0, 1], {}, TypeError, "`target` must be a tensor"),
    ],
)
def test_class_weights_bad_inputs(target, kwargs, error, match):
    with pytest.raises(error, match=match):
        mlh.class_weights(target, **kwargs)


def test_sample_weights_balance_a_weighted_sampler():
    target = torch.tensor([0] * 95 + [1] * 5)
    weights = mlh.sample_weights(target, mlh.class_weights(target))
    assert weights.shape == (100,)
    sampler = torch.utils.data.WeightedRandomSampler(
        weights, num_samples=20000, replacement=True, generator=torch.Generator().manual_seed(0)
    )
    drawn = target[torch.tensor(list(sampler))]
    assert abs(drawn.float().mean().item() - 0.5) < 0.02


def test_sample_weights_bad_inputs():
    with pytest.raises(ValueError, match=r"must lie in \[0, 2\)"):
        mlh.sample_weights(torch.tensor([0, 2]), torch.ones(2))
    with pytest.raises(TypeError, match="1-D integer tensor"):
        mlh.sample_weights(torch.tensor([0.0]), torch.ones(2))


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
