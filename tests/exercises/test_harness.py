"""The harness's number check, which investigation checks share."""

from __future__ import annotations

import pytest
import torch

from multiloss_helpers.exercises import _harness as h


def test_expect_number_accepts_a_finding_within_tolerance_only():
    assert h.expect_number(torch.tensor([0.31]), 0.3, "recall", abs_tol=0.02) == pytest.approx(0.31)
    for bad, part in ((0.5, "not what"), (float("nan"), "not finite"), ([0.3], "one number")):
        with pytest.raises(h.Hint, match=part):
            h.expect_number(bad, 0.3, "recall", abs_tol=0.02)
