"""The chapters' shared set-ups: the same problem for the same seed, bad input refused."""

import pytest
import torch

import multiloss_helpers as mlh
from multiloss_helpers.chapters import imbalance_split, multitask_splits, two_head_net


@pytest.mark.parametrize("problem", list(mlh.chapters.IMBALANCE_PROBLEMS))
def test_imbalance_split_is_seeded_and_stratified(problem):
    train, val = imbalance_split(problem, 3)
    again, _ = imbalance_split(problem, 3)
    torch.testing.assert_close(train["x"], again["x"])
    assert len(train["y"]) + len(val["y"]) == 3000
    share_train = torch.bincount(train["y"]) / len(train["y"])
    share_val = torch.bincount(val["y"]) / len(val["y"])
    torch.testing.assert_close(share_train, share_val, atol=0.01, rtol=0)


def test_multitask_splits_scale_the_regression_target():
    train, val, test = multitask_splits(0)
    assert [len(p["x"]) for p in (train, val, test)] == [450, 150, 300]
    raw = mlh.make_multitask_data(900, n_features=8, noise=0.2, label_noise=0.05, seed=0)
    assert train["y_reg"].std() > 5 * raw["y_reg"].std()


def test_two_head_net_matches_the_chapters_model():
    net = two_head_net(4, n_classes=4, device="cpu")
    ref = mlh.MultiHeadNet(8, {"cls": 4, "reg": 1}, hidden=(64, 64), seed=4)
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: imbalance_split("binary", 0), ValueError, "`problem` must be one of"),
        (lambda: imbalance_split("binary 95/5", 0, n=2.5), TypeError, "`n` must be an int"),
        (lambda: multitask_splits("0"), TypeError, "seed"),
        (lambda: two_head_net(0, n_classes=1), ValueError, "`n_classes` must be >= 2"),
    ],
)
def test_bad_input_is_refused_by_name(call, error, match):
    with pytest.raises(error, match=match):
        call()
