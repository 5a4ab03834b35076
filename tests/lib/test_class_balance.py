"""class_weights and sample_weights: formulas, limits, resources, bad inputs, devices."""

from __future__ import annotations

import time

import pytest
import torch
from helpers.devices import device_fixture  # noqa: F401  (the `device` fixture)

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


def test_effective_is_float32_and_matches_the_float64_formula():
    target = torch.tensor([0] * 1000 + [1] * 30 + [2] * 1)
    counts = torch.bincount(target).double()
    for beta in (0.9, 0.999, 0.999999):
        weights = mlh.class_weights(target, method="effective", beta=beta)
        assert weights.dtype == torch.float32
        raw = (1 - beta) / (1 - torch.tensor(beta, dtype=torch.float64) ** counts)
        torch.testing.assert_close(weights.double(), raw * 3 / raw.sum(), rtol=1e-5, atol=0)


def test_stray_huge_label_is_refused_early_with_a_short_message():
    target = torch.tensor([0, 1, 2, 1, 50_000_000])
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"largest label 50000000\) but only 5 labels") as info:
        mlh.class_weights(target)
    assert time.perf_counter() - start < 5  # a generous bound: nothing of size 5e7 is built
    assert len(str(info.value)) < 300
    assert "class 3 has no sample" in str(info.value)
    with pytest.raises(ValueError, match=r"10000000 classes \(largest label 2\) but only 5"):
        mlh.class_weights(target.clamp(max=2), num_classes=10_000_000)


def test_many_empty_classes_give_a_short_message():
    target = torch.cat([torch.arange(0, 2000, 2), torch.arange(0, 2000, 2)])  # odd ones empty
    with pytest.raises(ValueError, match=r"class 1 has no sample") as info:
        mlh.class_weights(target)
    assert len(str(info.value)) < 300 and "and 989 more" in str(info.value)


def test_class_weights_on_every_device(device):
    target = torch.tensor([0, 0, 0, 1, 2, 2], device=device)
    for method in ("balanced", "inverse", "effective"):
        weights = mlh.class_weights(target, method=method)
        assert weights.device == target.device and weights.dtype == torch.float32
        torch.testing.assert_close(weights.cpu(), mlh.class_weights(target.cpu(), method=method))
    samples = mlh.sample_weights(target, mlh.class_weights(target))
    assert samples.device == target.device and samples.shape == (6,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_sample_weights_keep_the_class_weights_dtype(dtype):
    target = torch.tensor([0, 1, 1])
    out = mlh.sample_weights(target, torch.tensor([2.0, 0.5], dtype=dtype))
    assert out.dtype == dtype
    assert out.tolist() == [2.0, 0.5, 0.5]


@pytest.mark.parametrize(
    ("target", "weights", "error", "match"),
    [
        (torch.tensor([True, False]), torch.ones(2), TypeError, "1-D integer tensor"),
        (torch.tensor([0, 1]), torch.tensor([1.0, -1.0]), ValueError, "non-negative and finite"),
        (torch.tensor([0, 1]), torch.tensor([1.0, float("nan")]), ValueError, "non-negative"),
        (torch.tensor([0, 1]), torch.tensor([1, 2]), TypeError, "1-D floating-point tensor"),
        (torch.tensor([[0, 1]]), torch.ones(2), ValueError, "`target` must be 1-D"),  # issue 20
        (
            torch.tensor([0, 1]),
            torch.ones(2, device="meta"),
            ValueError,
            "`class_weights` is on meta but `target` is on cpu",
        ),
    ],
)
def test_sample_weights_refuses(target, weights, error, match):
    with pytest.raises(error, match=match):
        mlh.sample_weights(target, weights)


def test_class_weights_refuses_bool_labels():
    with pytest.raises(TypeError, match="integer class labels"):
        mlh.class_weights(torch.tensor([True, False]))


# Issue 20 regression: sample_weights raised TypeError for a wrong shape (D)
def test_sample_weights_wrong_shapes_are_value_errors():
    with pytest.raises(ValueError, match="`target` must be 1-D"):
        mlh.sample_weights(torch.tensor([[0, 1]]), torch.ones(2))
    with pytest.raises(ValueError, match="`class_weights` must be 1-D"):
        mlh.sample_weights(torch.tensor([0, 1]), torch.ones(2, 1))
    with pytest.raises(TypeError, match="`target` must be"):
        mlh.sample_weights(torch.tensor([0.0, 1.0]), torch.ones(2))
