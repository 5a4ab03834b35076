"""binary_focal_loss names NaN targets as NaN, not as a range "from nan to nan" (issue 20, D)."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh
import multiloss_helpers._focal_kernels as kernels


@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (None, 0.0), (None, 0.5)])
def test_one_nan_target_is_named(alpha, gamma):
    target = torch.tensor([0.0, float("nan"), 1.0])
    with pytest.raises(ValueError, match=r"NaN: 1 of 3, the first at flat index 1") as info:
        mlh.binary_focal_loss(torch.randn(3), target, alpha=alpha, gamma=gamma)
    assert "nan to nan" not in str(info.value)


def test_nan_in_a_later_chunk_is_counted_over_the_whole_target(monkeypatch):
    monkeypatch.setattr(kernels, "_CHUNK", 64)
    target = (torch.rand(300) < 0.5).float()
    target[[10, 250, 290]] = float("nan")
    with pytest.raises(ValueError, match=r"NaN: 3 of 300, the first at flat index 10"):
        mlh.binary_focal_loss(torch.randn(300, requires_grad=True), target)


def test_a_value_out_of_range_still_gives_the_range():
    with pytest.raises(ValueError, match=r"got values from -0.5 to 2.0"):
        mlh.binary_focal_loss(torch.randn(3), torch.tensor([-0.5, 0.3, 2.0]))
