"""Synthetic data, splitting and the batch loader."""

from __future__ import annotations

import pytest
import torch

import multiloss_helpers as mlh


class TestMakeMultitaskData:
    def test_shapes_and_dtypes(self):
        data = mlh.make_multitask_data(50, n_features=5, n_classes=4, seed=1)
        assert data["x"].shape == (50, 5) and data["x"].dtype == torch.float32
        assert data["y_reg"].shape == (50, 1) and data["y_reg"].dtype == torch.float32
        assert data["y_cls"].shape == (50,) and data["y_cls"].dtype == torch.int64
        assert int(data["y_cls"].min()) >= 0 and int(data["y_cls"].max()) < 4

    def test_same_seed_same_data_and_generator_accepted(self):
        a = mlh.make_multitask_data(40, seed=3)
        b = mlh.make_multitask_data(40, seed=torch.Generator().manual_seed(3))
        for key in a:
            torch.testing.assert_close(a[key], b[key])

    def test_different_seeds_differ(self):
        a = mlh.make_multitask_data(40, seed=0)
        b = mlh.make_multitask_data(40, seed=1)
        assert not torch.equal(a["x"], b["x"])

    def test_does_not_touch_global_rng(self):
        state = torch.get_rng_state()
        mlh.make_multitask_data(20, seed=0)
        assert torch.equal(state, torch.get_rng_state())

    def test_every_class_present(self):
        counts = torch.bincount(mlh.make_multitask_data(3000, n_classes=5)["y_cls"], minlength=5)
        assert (counts > 300).all(), counts

    def test_label_noise_only_changes_labels(self):
        clean = mlh.make_multitask_data(500, label_noise=0.0, seed=2)
        noisy = mlh.make_multitask_data(500, label_noise=0.3, seed=2)
        torch.testing.assert_close(clean["x"], noisy["x"])
        torch.testing.assert_close(clean["y_reg"], noisy["y_reg"])
        changed = (clean["y_cls"] != noisy["y_cls"]).float().mean()
        # replaced by a uniform draw over 3 classes: 2/3 of the replaced ones change
        assert 0.12 < changed < 0.28

    def test_targets_share_structure(self):
        # a classifier on the regression target alone beats chance: the tasks are related
        data = mlh.make_multitask_data(4000, noise=0.0, seed=0)
        y, c = data["y_reg"].squeeze(1), data["y_cls"]
        means = torch.stack([y[c == k].mean() for k in range(3)])
        assert means.max() - means.min() > 0.1

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"n_samples": 0}, ValueError, "`n_samples` must be >= 1"),
            ({"n_samples": 2.5}, TypeError, "`n_samples` must be an int"),
            ({"n_features": 1}, ValueError, "`n_features` must be >= 2"),
            ({"n_classes": 1}, ValueError, "`n_classes` must be >= 2"),
            ({"noise": -0.1}, ValueError, "`noise` must be >= 0"),
            ({"label_noise": 1.5}, ValueError, "`label_noise` must be <= 1"),
            ({"seed": -1}, ValueError, "`seed` must be >= 0"),
            ({"seed": "a"}, TypeError, "`seed` must be an int"),
            ({"n_classes": True}, TypeError, "`n_classes` must be an int"),
        ],
    )
    def test_bad_inputs(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            mlh.make_multitask_data(**kwargs)


class TestMakeImbalancedData:
    def test_exact_counts(self):
        data = mlh.make_imbalanced_data(2000, proportions=(0.95, 0.05))
        assert torch.bincount(data["y"]).tolist() == [1900, 100]
        assert data["x"].shape == (2000, 2)

    def test_unnormalised_proportions_and_rounding(self):
        data = mlh.make_imbalanced_data(1001, proportions=(50, 30, 15, 4, 1), n_features=3)
        counts = torch.bincount(data["y"]).tolist()
        assert sum(counts) == 1001
        assert counts == sorted(counts, reverse=True)
        assert counts[-1] == 10

    def test_shuffled(self):
        y = mlh.make_imbalanced_data(1000, proportions=(0.5, 0.5))["y"]
        assert not torch.equal(y, torch.sort(y).values)

    def test_classes_are_separable_when_far_apart(self):
        data = mlh.make_imbalanced_data(1000, proportions=(0.5, 0.5), class_sep=10.0, seed=4)
        centres = torch.stack([data["x"][data["y"] == k].mean(0) for k in range(2)])
        assert (centres[0] - centres[1]).norm() > 15

    def test_deterministic(self):
        a = mlh.make_imbalanced_data(300, seed=5)
        b = mlh.make_imbalanced_data(300, seed=5)
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])

    def test_empty_class_names_the_class(self):
        with pytest.raises(ValueError, match="class 2 would get no sample"):
            mlh.make_imbalanced_data(10, proportions=(0.9, 0.09, 0.01))

    @pytest.mark.parametrize(
        ("proportions", "error", "match"),
        [
            ((1.0,), ValueError, "at least two classes"),
            ((0.5, -0.5), ValueError, r"`proportions\[1\]` must be > 0"),
            ("ab", TypeError, "`proportions` must be a sequence"),
            ((0.5, "x"), TypeError, r"`proportions\[1\]` must be a real number"),
        ],
    )
    def test_bad_proportions(self, proportions, error, match):
        with pytest.raises(error, match=match):
            mlh.make_imbalanced_data(100, proportions=proportions)


class TestTrainValSplit:
    def _indexed(self, n=100):
        data = mlh.make_imbalanced_data(n, proportions=(0.8, 0.2))
        data["index"] = torch.arange(n)
        return data

    def test_partition(self):
        train, val = mlh.train_val_split(self._indexed(), val_fraction=0.25, seed=0)
        assert len(val["index"]) == 25 and len(train["index"]) == 75
        both = torch.cat([train["index"], val["index"]]).sort().values
        assert torch.equal(both, torch.arange(100))

    def test_rows_stay_aligned(self):
        data = self._indexed()
        train, _ = mlh.train_val_split(data, seed=0)
        torch.testing.assert_close(train["x"], data["x"][train["index"]])

    def test_stratified_keeps_proportions(self):
        data = mlh.make_imbalanced_data(1000, proportions=(0.9, 0.1))
        train, val = mlh.train_val_split(data, val_fraction=0.2, stratify="y")
        assert torch.bincount(val["y"]).tolist() == [180, 20]
        assert torch.bincount(train["y"]).tolist() == [720, 80]

    def test_same_seed_same_split(self):
        data = self._indexed()
        a = mlh.train_val_split(data, seed=7)[1]["index"]
        b = mlh.train_val_split(data, seed=7)[1]["index"]
        assert torch.equal(a, b)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"val_fraction": 0.0}, ValueError, "`val_fraction` must be > 0"),
            ({"val_fraction": 1.0}, ValueError, "`val_fraction` must be < 1"),
            ({"val_fraction": 0.001}, ValueError, "leaves an empty part"),
            ({"stratify": "label"}, ValueError, "`stratify` must be one of"),
            ({"stratify": "x"}, TypeError, "must hold integer class labels"),
        ],
    )
    def test_bad_inputs(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            mlh.train_val_split(self._indexed(), **kwargs)

    def test_stratify_labels_follow_the_shared_rule(self):
        data = self._indexed()
        with pytest.raises(TypeError, match="a bool tensor is a mask"):
            mlh.train_val_split({**data, "m": data["y"] > 0}, stratify="m")
        with pytest.raises(ValueError, match="must be a 1-D tensor of class labels"):
            mlh.train_val_split({**data, "y2": data["y"][:, None]}, stratify="y2")

    def test_mismatched_lengths(self):
        with pytest.raises(ValueError, match="same length"):
            mlh.train_val_split({"x": torch.zeros(5, 2), "y": torch.zeros(4)})

    def test_not_a_mapping(self):
        with pytest.raises(TypeError, match="`data` must be a non-empty mapping"):
            mlh.train_val_split(torch.zeros(10, 2))


class TestBatchLoader:
    def test_each_epoch_visits_every_sample_once(self):
        data = {"i": torch.arange(103), "x": torch.randn(103, 2)}
        loader = mlh.BatchLoader(data, batch_size=10, seed=0)
        epochs = [torch.cat([b["i"] for b in loader]) for _ in range(2)]
        for seen in epochs:
            assert torch.equal(seen.sort().values, torch.arange(103))
        assert not torch.equal(epochs[0], epochs[1])
        assert len(loader) == 11

    def test_rows_stay_aligned(self):
        data = {"i": torch.arange(50), "x": torch.arange(50).float() * 2}
        for batch in mlh.BatchLoader(data, batch_size=7):
            torch.testing.assert_close(batch["x"], batch["i"].float() * 2)

    def test_seeded_is_reproducible(self):
        data = {"i": torch.arange(30)}
        a = [b["i"] for b in mlh.BatchLoader(data, 8, seed=3)]
        b = [b["i"] for b in mlh.BatchLoader(data, 8, seed=3)]
        assert all(torch.equal(x, y) for x, y in zip(a, b))

    def test_no_shuffle_keeps_order(self):
        data = {"i": torch.arange(10)}
        batches = [b["i"].tolist() for b in mlh.BatchLoader(data, 4, shuffle=False)]
        assert batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]

    def test_drop_last(self):
        loader = mlh.BatchLoader({"i": torch.arange(10)}, 4, drop_last=True)
        assert len(loader) == 2
        assert [len(b["i"]) for b in loader] == [4, 4]

    def test_matches_dataloader_contents(self):
        data = mlh.make_multitask_data(64, seed=0)
        ours = torch.cat([b["x"] for b in mlh.BatchLoader(data, 16, shuffle=False)])
        ref = torch.cat(
            [
                x
                for x, _ in torch.utils.data.DataLoader(
                    torch.utils.data.TensorDataset(data["x"], data["y_cls"]), batch_size=16
                )
            ]
        )
        torch.testing.assert_close(ours, ref)

    def test_repr(self):
        loader = mlh.BatchLoader({"x": torch.zeros(5, 1)}, 2)
        assert (
            repr(loader)
            == "BatchLoader(<5 samples: x>, batch_size=2, shuffle=True, drop_last=False)"
        )

    @pytest.mark.parametrize(
        ("args", "kwargs", "error", "match"),
        [
            (({"x": torch.zeros(4)}, 0), {}, ValueError, "`batch_size` must be >= 1"),
            (({"x": torch.zeros(4)}, 2), {"shuffle": 1}, TypeError, "`shuffle` must be a bool"),
            (({"x": torch.zeros(4)}, 8), {"drop_last": True}, ValueError, "no batch at all"),
            (({"x": torch.zeros(4), "y": torch.zeros(3)}, 2), {}, ValueError, "same length"),
            (({"x": [1, 2]}, 2), {}, TypeError, r"`data\['x'\]` must be a tensor"),
            (((torch.zeros(4),), 2), {}, TypeError, "`data` must be a non-empty mapping"),
        ],
    )
    def test_bad_inputs(self, args, kwargs, error, match):
        with pytest.raises(error, match=match):
            mlh.BatchLoader(*args, **kwargs)


class TestMakeDomainData:
    def test_shapes_balance_and_label_rule(self):
        data = mlh.make_domain_data(200, n_features=6, n_signal=3, seed=1)
        assert data["x"].shape == (400, 6)
        assert torch.bincount(data["domain"]).tolist() == [200, 200]
        torch.testing.assert_close(data["y"], (data["x"][:, :3].sum(1) > 0).long())

    def test_domains_differ_only_in_nuisance_features(self):
        data = mlh.make_domain_data(5000, shift=3.0, seed=0)
        x, d = data["x"], data["domain"]
        gap = x[d == 1].mean(0) - x[d == 0].mean(0)
        assert gap[:2].abs().max() < 0.1
        assert gap[2:].norm() == pytest.approx(3.0, abs=0.15)

    def test_deterministic(self):
        a, b = mlh.make_domain_data(50, seed=4), mlh.make_domain_data(50, seed=4)
        assert all(torch.equal(a[k], b[k]) for k in a)

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"n_signal": 8}, ValueError, "`n_signal` must be smaller"),
            ({"shift": -1.0}, ValueError, "`shift` must be >= 0"),
            ({"n_per_domain": 0}, ValueError, "`n_per_domain` must be >= 1"),
        ],
    )
    def test_bad_inputs(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            mlh.make_domain_data(**kwargs)


class TestMakeDomainDataSignalShift:
    def test_default_keeps_the_label_rule_in_both_domains(self):
        data = mlh.make_domain_data(200, seed=4)
        assert torch.equal((data["x"][:, :2].sum(1) > 0).long(), data["y"])

    def test_signal_shift_offsets_domain_one_only_and_keeps_its_labels(self):
        plain = mlh.make_domain_data(300, shift=1.0, seed=5)
        shifted = mlh.make_domain_data(300, shift=1.0, signal_shift=2.0, seed=5)
        assert torch.equal(plain["y"], shifted["y"])
        assert torch.equal(plain["domain"], shifted["domain"])
        offset = shifted["x"] - plain["x"]
        target = shifted["domain"] == 1
        torch.testing.assert_close(offset[~target], torch.zeros_like(offset[~target]))
        want = torch.tensor([2.0 / 2**0.5] * 2 + [0.0] * 6).expand(int(target.sum()), 8)
        torch.testing.assert_close(offset[target], want)

    def test_negative_signal_shift_is_refused(self):
        with pytest.raises(ValueError, match="signal_shift"):
            mlh.make_domain_data(10, signal_shift=-1.0)


class TestMakeSegmentationData:
    def test_shapes_dtypes_and_classes(self):
        data = mlh.make_segmentation_data(40, size=24, seed=0)
        assert data["x"].shape == (40, 1, 24, 24) and data["x"].dtype == torch.float32
        assert data["y"].shape == (40, 24, 24) and data["y"].dtype == torch.int64
        assert set(data["y"].unique().tolist()) <= {0, 1, 2, 3}

    def test_same_seed_same_tensors_and_global_generator_untouched(self):
        state = torch.random.get_rng_state()
        a = mlh.make_segmentation_data(30, seed=5)
        assert torch.equal(state, torch.random.get_rng_state())
        b = mlh.make_segmentation_data(30, seed=torch.Generator().manual_seed(5))
        assert all(torch.equal(a[k], b[k]) for k in a)
        c = mlh.make_segmentation_data(30, seed=6)
        assert not torch.equal(a["y"], c["y"])

    def test_rare_small_class_and_empty_masks(self):
        y = mlh.make_segmentation_data(2000, seed=1)["y"]
        share = torch.bincount(y.flatten(), minlength=4) / y.numel()
        assert share[3] < 0.005 < share[2] < share[1] < share[0]  # the spot is rare
        present = torch.stack([(y == c).flatten(1).any(1) for c in range(4)], 1)
        observed = present.float().mean(0)
        # presence (0.8, 0.7, 0.3), less the shapes covered by the ones drawn later
        torch.testing.assert_close(observed[3], torch.tensor(0.3), atol=0.03, rtol=0)
        assert observed[0] == 1  # sampling noise on 2000 images: about 0.01
        assert 0.62 < observed[2] < 0.73 and 0.67 < observed[1] < 0.83
        spot_sizes = (y == 3).flatten(1).sum(1)[present[:, 3]]
        assert spot_sizes.min() >= 1 and spot_sizes.max() <= 16  # a few pixels

    def test_intensity_follows_the_mask(self):
        data = mlh.make_segmentation_data(500, noise=0.0, seed=2)
        levels = torch.tensor([0.0, 1.0, -1.0, 2.0])
        torch.testing.assert_close(data["x"][:, 0], levels[data["y"]])
        noisy = mlh.make_segmentation_data(500, noise=0.5, seed=2)
        residual = noisy["x"][:, 0] - levels[noisy["y"]]
        assert residual.std().item() == pytest.approx(0.5, rel=0.02)

    def test_presence_zero_and_one(self):
        y = mlh.make_segmentation_data(50, presence=(1.0, 0.0, 0.0), seed=3)["y"]
        assert (y == 1).flatten(1).any(1).all() and not ((y == 2) | (y == 3)).any()

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"n_images": 0}, ValueError, "`n_images` must be >= 1"),
            ({"size": 8}, ValueError, "`size` must be >= 16"),
            ({"size": 32.0}, TypeError, "`size` must be an int"),
            ({"noise": -0.1}, ValueError, "`noise` must be >= 0"),
            ({"presence": (0.5, 0.5)}, ValueError, "one probability for each of classes"),
            ({"presence": (0.5, 1.5, 0.1)}, ValueError, r"`presence\[1\]` must be <= 1"),
            ({"presence": "abc"}, TypeError, "`presence` must be a sequence"),
            ({"seed": -1}, ValueError, "`seed` must be >= 0"),
        ],
    )
    def test_bad_inputs(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            mlh.make_segmentation_data(**kwargs)
