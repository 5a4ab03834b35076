"""mlh.load_penguins: the counts, the masks, the standardisation, no network, no package."""

from __future__ import annotations

import socket
import sys

import pytest
import torch

import multiloss_helpers as mlh

pytest.importorskip("palmerpenguins")


def test_all_344_penguins_with_their_missing_labels():
    data = mlh.load_penguins(standardize=False, keep_unmeasured=True)
    assert {len(value) for value in data.values()} == {344}
    assert torch.bincount(data["species"]).tolist() == [152, 68, 124]
    assert int((~data["sex_mask"]).sum()) == 11
    assert torch.bincount(data["sex"][data["sex_mask"]]).tolist() == [165, 168]
    assert (data["sex"][~data["sex_mask"]] == -100).all()
    assert int((~data["measured"]).sum()) == 2
    assert torch.equal(data["body_mass_mask"], data["measured"])
    assert torch.isnan(data["x"][~data["measured"]]).all()
    assert torch.isnan(data["body_mass"][~data["measured"]]).all()
    assert not torch.isnan(data["x"][data["measured"]]).any()
    # the two unmeasured penguins have no sex either: one Adelie, one Gentoo
    assert not data["sex_mask"][~data["measured"]].any()
    assert data["species"][~data["measured"]].tolist() == [0, 2]
    assert torch.bincount(data["island"]).tolist() == [168, 124, 52]
    assert torch.bincount(data["year"] - 2007).tolist() == [110, 114, 120]


def test_the_default_drops_the_two_unmeasured_penguins():
    data = mlh.load_penguins()
    assert {len(value) for value in data.values()} == {342}
    assert torch.bincount(data["species"]).tolist() == [151, 68, 123]
    assert int((~data["sex_mask"]).sum()) == 9
    assert data["measured"].all() and data["body_mass_mask"].all()
    assert torch.isfinite(data["x"]).all() and torch.isfinite(data["body_mass"]).all()
    assert data["x"].dtype == torch.float32 and data["body_mass"].dtype == torch.float32
    for key in ("species", "sex", "island", "year"):
        assert data[key].dtype == torch.int64, key
    for key in ("sex_mask", "body_mass_mask", "measured"):
        assert data[key].dtype == torch.bool, key


def test_standardisation_uses_the_documented_statistics():
    raw = mlh.load_penguins(standardize=False)
    data = mlh.load_penguins()
    values = torch.cat([raw["x"], raw["body_mass"][:, None]], dim=1).double()
    mean, std = values.mean(0), values.std(0)
    documented_mean = torch.tensor([43.9219, 17.1512, 200.9152, 4201.7544], dtype=torch.float64)
    documented_std = torch.tensor([5.4596, 1.9748, 14.0617, 801.9545], dtype=torch.float64)
    torch.testing.assert_close(mean, documented_mean, atol=5e-5, rtol=0)
    torch.testing.assert_close(std, documented_std, atol=5e-5, rtol=0)
    standardised = torch.cat([data["x"], data["body_mass"][:, None]], dim=1).double()
    torch.testing.assert_close(standardised.mean(0), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(standardised.std(0), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(standardised * std + mean, values)
    for key in ("species", "sex", "sex_mask", "island", "year"):
        assert torch.equal(data[key], raw[key]), key


def test_the_first_rows_are_the_csv_rows():
    raw = mlh.load_penguins(standardize=False, keep_unmeasured=True)
    # Adelie,Torgersen,39.1,18.7,181,3750,male,2007 and the unmeasured fourth row
    torch.testing.assert_close(raw["x"][0], torch.tensor([39.1, 18.7, 181.0]))
    assert raw["body_mass"][0].item() == 3750.0
    assert (raw["species"][0].item(), raw["island"][0].item(), raw["sex"][0].item()) == (0, 2, 1)
    assert raw["year"][0].item() == 2007 and not raw["measured"][3]


def test_the_result_works_with_the_splitter_and_the_loader():
    train, val = mlh.train_val_split(mlh.load_penguins(), val_fraction=0.25, stratify="species")
    assert len(train["x"]) + len(val["x"]) == 342
    batches = list(mlh.BatchLoader(train, batch_size=64, seed=0))
    assert sum(len(batch["sex"]) for batch in batches) == len(train["x"])


def test_no_network_is_used(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_penguins opened a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert len(mlh.load_penguins()["x"]) == 342


def test_a_missing_package_is_an_import_error_that_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "palmerpenguins", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install palmerpenguins==0\.1\.6"):
        mlh.load_penguins()


@pytest.mark.parametrize("kwargs", [{"standardize": 1}, {"keep_unmeasured": "yes"}])
def test_options_must_be_bools(kwargs):
    with pytest.raises(TypeError, match="must be a bool"):
        mlh.load_penguins(**kwargs)
