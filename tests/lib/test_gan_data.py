"""The ring of Gaussians for the two-player chapter, and its centres."""

from __future__ import annotations

import math

import pytest
import torch

import multiloss_helpers as mlh


class TestRingCentres:
    def test_points_on_the_circle_evenly_spaced(self):
        centres = mlh.ring_centres(8, radius=2.0)
        assert centres.shape == (8, 2) and centres.dtype == torch.float32
        torch.testing.assert_close(centres.norm(dim=1), torch.full((8,), 2.0))
        gaps = torch.cdist(centres, centres)[torch.arange(8), (torch.arange(8) + 1) % 8]
        torch.testing.assert_close(gaps, torch.full((8,), 4 * math.sin(math.pi / 8)))

    def test_first_centre_on_the_x_axis(self):
        torch.testing.assert_close(mlh.ring_centres(3, radius=1.5)[0], torch.tensor([1.5, 0.0]))

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"modes": 0}, ValueError, "`modes` must be >= 1"),
            ({"modes": 2.0}, TypeError, "`modes` must be an int"),
            ({"radius": 0.0}, ValueError, "`radius` must be > 0"),
            ({"radius": "2"}, TypeError, "`radius` must be a real number"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            mlh.ring_centres(**kwargs)


class TestMakeRingData:
    def test_shapes_dtypes_and_equal_modes(self):
        data = mlh.make_ring_data(803, modes=8, seed=1)
        assert data["x"].shape == (803, 2) and data["x"].dtype == torch.float32
        assert data["mode"].shape == (803,) and data["mode"].dtype == torch.int64
        counts = torch.bincount(data["mode"], minlength=8)
        assert int(counts.max() - counts.min()) <= 1 and int(counts.sum()) == 803

    def test_samples_lie_around_their_centre(self):
        data = mlh.make_ring_data(4000, modes=5, radius=3.0, std=0.1, seed=2)
        centres = mlh.ring_centres(5, radius=3.0)
        offset = data["x"] - centres[data["mode"]]
        assert offset.mean(0).abs().max() < 0.01
        torch.testing.assert_close(offset.std(0), torch.full((2,), 0.1), rtol=0.05, atol=0)
        assert torch.equal(torch.cdist(data["x"], centres).argmin(1), data["mode"])

    def test_zero_std_gives_the_centres(self):
        data = mlh.make_ring_data(16, modes=4, radius=1.0, std=0.0, seed=0)
        torch.testing.assert_close(data["x"], mlh.ring_centres(4, radius=1.0)[data["mode"]])

    def test_modes_come_in_random_order(self):
        mode = mlh.make_ring_data(64, seed=0)["mode"]
        assert not torch.equal(mode, torch.arange(64) % 8)

    def test_same_seed_same_data_and_generator_accepted(self):
        a = mlh.make_ring_data(50, seed=3)
        b = mlh.make_ring_data(50, seed=torch.Generator().manual_seed(3))
        for key in a:
            assert torch.equal(a[key], b[key])
        assert not torch.equal(a["x"], mlh.make_ring_data(50, seed=4)["x"])

    def test_does_not_touch_global_rng(self):
        state = torch.get_rng_state()
        mlh.make_ring_data(20, seed=0)
        assert torch.equal(state, torch.get_rng_state())

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"n": 0}, ValueError, "`n` must be >= 1"),
            ({"n": 10.0}, TypeError, "`n` must be an int"),
            ({"modes": 0}, ValueError, "`modes` must be >= 1"),
            ({"radius": -1.0}, ValueError, "`radius` must be > 0"),
            ({"std": -0.1}, ValueError, "`std` must be >= 0"),
            ({"std": float("nan")}, ValueError, "`std` must be finite"),
            ({"seed": -1}, ValueError, "`seed` must be >= 0"),
            ({"seed": "0"}, TypeError, "`seed` must be an int"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, match):
        with pytest.raises(error, match=match):
            mlh.make_ring_data(**{"n": 10, **kwargs})


def test_make_ring_data_seed_range_and_generator_device():
    # a seed of 2**64 or more raised torch's "Overflow when unpacking long long"
    with pytest.raises(ValueError, match=r"`seed` must be < 2\*\*64"):
        mlh.make_ring_data(10, seed=2**70)
    # a CUDA generator raised deep inside torch.randperm ("Expected a 'cpu' device type")

    class CudaGenerator(torch.Generator):  # stands in for torch.Generator("cuda") on any machine
        @property
        def device(self):
            return torch.device("cuda")

    with pytest.raises(ValueError, match=r"a CPU torch\.Generator.*got a generator on cuda"):
        mlh.make_ring_data(10, seed=CudaGenerator())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    # a radius or std beyond float32 gave inf samples silently
    [
        ({"radius": 1e39}, r"`radius` must be <= 1e\+30"),
        ({"std": 1e39}, r"`std` must be <= 1e\+30"),
    ],
)
def test_make_ring_data_refuses_scales_that_overflow_float32(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mlh.make_ring_data(10, **kwargs)
