"""The chapters' shared set-ups: the same problem for the same seed, bad input refused."""

import pytest
import torch
import torch.nn.functional as F

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


# chapter 17: the seed-by-loss stack of segmentation nets and its two scores
def test_segmentation_nets_equal_separate_conv_nets():
    nets = mlh.chapters.SegmentationNets(3, 2, width=5, kernel_size=3, seed=1)
    x = torch.randn(3, 4, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    out = nets(x)
    assert out.shape == (3, 4, 2, 4, 16, 16)
    for g in range(3):
        for k in range(2):
            torch.testing.assert_close(out[g, :, k], nets.net(g, k)(x[g]))


def test_segmentation_nets_share_no_parameter():
    nets = mlh.chapters.SegmentationNets(2, 3, seed=0)
    x = torch.randn(2, 2, 1, 16, 16)
    nets(x)[1, :, 2].sum().backward()
    for p in nets.parameters():
        others = torch.ones_like(p, dtype=torch.bool)
        others[1, :, 2 * nets.width : 3 * nets.width] = False  # net (1, 2)'s rows, layer 1
        if p.dim() == 5:  # layers 2 and 3: (G, 1, K, out, in)
            others = torch.ones_like(p, dtype=torch.bool)
            others[1, :, 2] = False
        assert (p.grad[others] == 0).all()
        assert (p.grad[~others] != 0).any()


def test_segmentation_nets_seeded_and_refuse_bad_input():
    a, b = mlh.chapters.SegmentationNets(2, 2, seed=3), mlh.chapters.SegmentationNets(2, 2, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert "n_groups=2, n_per_group=2" in repr(a)
    with pytest.raises(ValueError, match="must have shape"):
        a(torch.zeros(3, 1, 1, 8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        a(torch.zeros(2, 1, 1, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="`kernel_size` must be odd"):
        mlh.chapters.SegmentationNets(1, 1, kernel_size=4)
    with pytest.raises(ValueError, match=r"net \(2, 0\) does not exist"):
        a.net(2, 0)


def test_overlap_dice_against_counts():
    pred = torch.tensor([[0, 1, 1], [2, 2, 0]])
    target = torch.tensor([[0, 1, 2], [2, 2, 2]])
    dice = mlh.chapters.overlap_dice(pred, target, 4)
    torch.testing.assert_close(dice[:3], torch.tensor([2 / 3, 2 / 3, 4 / 6]))
    assert dice[3].isnan()
    with pytest.raises(ValueError, match="same shape"):
        mlh.chapters.overlap_dice(pred, target[0], 4)


def test_expected_calibration_error_by_hand():
    prob = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.55, 0.45]]).T[None]
    target = torch.tensor([[0, 1, 1, 0]])
    # bins: 0.9 right; 0.7 wrong; 0.8 right; 0.55 right -> |0.9-1| + |0.7-0| + |0.8-1|
    # + |0.55-1|, each in its own bin, over 4 pixels
    want = (0.1 + 0.7 + 0.2 + 0.45) / 4
    got = mlh.chapters.expected_calibration_error(prob, target)
    assert got.item() == pytest.approx(want, abs=1e-6)
    perfect = F.one_hot(target, 2).permute(0, 2, 1).float()
    assert mlh.chapters.expected_calibration_error(perfect, target).item() == 0
    with pytest.raises(ValueError, match="do not match"):
        mlh.chapters.expected_calibration_error(prob, target[:, :3])
