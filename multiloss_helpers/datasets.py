r"""Real data that ships inside an installed package: nothing is downloaded.

The Palmer penguins (Gorman, Williams & Fraser 2014; packaged by Horst, Hill & Gorman
2020) come from the CSV file inside the ``palmerpenguins`` package (an optional
dependency: ``pip install multiloss-helpers[data]``), read with ``importlib.resources``.
"""

from __future__ import annotations

import csv
import importlib
import importlib.resources
import io
import math

import torch
from torch import Tensor

from ._validation import check_bool

__all__ = ["load_penguins"]

SPECIES = ("Adelie", "Chinstrap", "Gentoo")
ISLANDS = ("Biscoe", "Dream", "Torgersen")
SEXES = ("female", "male")
FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm")
MISSING_LABEL = -100  # F.cross_entropy's default ignore_index


def _penguins_csv() -> str:
    try:
        package = importlib.import_module("palmerpenguins")
    except ImportError:
        raise ImportError(
            "load_penguins reads the CSV file of the `palmerpenguins` package, which is not "
            "installed: `pip install palmerpenguins==0.1.6` (or "
            "`pip install multiloss-helpers[data]`)"
        ) from None
    resource = importlib.resources.files(package) / "data" / "penguins.csv"
    return resource.read_text(encoding="utf-8")


def _number(text: str) -> float:
    return math.nan if text == "NA" else float(text)


def load_penguins(*, standardize: bool = True, keep_unmeasured: bool = False) -> dict[str, Tensor]:
    r"""The Palmer penguins as tensors, with explicit masks for the missing labels.

    344 penguins of three species, measured on three islands of the Palmer Archipelago
    (Antarctica) in 2007-2009: 152 Adelie, 68 Chinstrap, 124 Gentoo. The sex is missing
    for 11 penguins, and 2 of those (one Adelie, one Gentoo) have no measurements at all
    (no bill, flipper or body mass). By default those 2 are dropped, which leaves 342
    penguins: 151 Adelie, 68 Chinstrap, 123 Gentoo, with the sex missing for 9 (165
    female, 168 male) and the body mass known for all. ``keep_unmeasured=True`` keeps all
    344; their features and body mass are then NaN, and ``measured`` and
    ``body_mass_mask`` are ``False`` there (select with the mask before any arithmetic: a
    NaN times 0 is still NaN).

    The result is a dictionary of tensors that share their first dimension, ready for
    :func:`train_val_split` and :class:`BatchLoader`:

    - ``x``: float32 ``(n, 3)``, bill length (mm), bill depth (mm) and flipper length
      (mm);
    - ``species``: int64, 0 Adelie, 1 Chinstrap, 2 Gentoo (none missing);
    - ``sex``: int64, 0 female, 1 male, and ``-100`` where missing (the default
      ``ignore_index`` of :func:`torch.nn.functional.cross_entropy`), with
      ``sex_mask``: bool, ``True`` where the sex is known;
    - ``body_mass``: float32, the body mass, with ``body_mass_mask`` (bool);
    - ``island``: int64, 0 Biscoe, 1 Dream, 2 Torgersen; ``year``: int64, 2007-2009;
    - ``measured``: bool, ``True`` where the measurements exist.

    With ``standardize=True`` (the default) ``x`` and ``body_mass`` are standardised,
    :math:`(v - \mu) / \sigma`, with the mean and the sample standard deviation
    (:math:`n - 1`) of the 342 measured penguins, computed in float64:

    =====================  =============  ===========
    quantity               :math:`\mu`    :math:`\sigma`
    =====================  =============  ===========
    bill length (mm)       43.9219        5.4596
    bill depth (mm)        17.1512        1.9748
    flipper length (mm)    200.9152       14.0617
    body mass (g)          4201.7544      801.9545
    =====================  =============  ===========

    The statistics use the whole table, validation rows included (body mass too, which a
    chapter may predict): to keep a validation split out of them, take
    ``standardize=False`` and standardise with the training rows. ``standardize=False``
    gives millimetres and grams; the statistics above are then ``raw["x"].double().mean(0)`` and
    ``.std(0)`` over the measured rows, and ``x * sigma + mu`` undoes the scaling.

    Args:
        standardize: standardise ``x`` and ``body_mass`` (``True``) or keep millimetres
            and grams (``False``). Default: ``True``.
        keep_unmeasured: keep the 2 penguins with no measurements (``True``: 344 rows,
            their ``x`` and ``body_mass`` NaN) or drop them (``False``: 342 rows).
            Default: ``False``.

    Returns:
        A dictionary of tensors, keys as listed above.

    Raises:
        ImportError: the ``palmerpenguins`` package is not installed.

    Example:
        >>> data = load_penguins()
        >>> data["x"].shape, torch.bincount(data["species"]).tolist()
        (torch.Size([342, 3]), [151, 68, 123])
        >>> int((~data["sex_mask"]).sum()), data["sex"][~data["sex_mask"]].unique().tolist()
        (9, [-100])
        >>> raw = load_penguins(standardize=False, keep_unmeasured=True)
        >>> len(raw["species"]), int((~raw["sex_mask"]).sum()), int((~raw["measured"]).sum())
        (344, 11, 2)
        >>> raw["body_mass"][raw["measured"]][:3]  # grams
        tensor([3750., 3800., 3250.])

    Data: Gorman, Williams & Fraser 2014, "Ecological sexual dimorphism and environmental
    variability within a community of Antarctic penguins (genus *Pygoscelis*)", PLoS ONE
    9(3): e90081, `doi:10.1371/journal.pone.0090081
    <https://doi.org/10.1371/journal.pone.0090081>`_; Horst, Hill & Gorman 2020,
    "palmerpenguins: Palmer Archipelago (Antarctica) penguin data", R package,
    `doi:10.5281/zenodo.3960218 <https://doi.org/10.5281/zenodo.3960218>`_ (the Python
    package ``palmerpenguins`` ships the same table).
    """
    check_bool(standardize, "standardize")
    check_bool(keep_unmeasured, "keep_unmeasured")
    rows = list(csv.DictReader(io.StringIO(_penguins_csv())))
    measurements = torch.tensor(
        [[_number(row[name]) for name in (*FEATURES, "body_mass_g")] for row in rows],
        dtype=torch.float64,
    )
    measured = ~torch.isnan(measurements).any(dim=1)
    sex = torch.tensor(
        [SEXES.index(row["sex"]) if row["sex"] in SEXES else MISSING_LABEL for row in rows]
    )
    data = {
        "species": torch.tensor([SPECIES.index(row["species"]) for row in rows]),
        "sex": sex,
        "sex_mask": sex != MISSING_LABEL,
        "island": torch.tensor([ISLANDS.index(row["island"]) for row in rows]),
        "year": torch.tensor([int(row["year"]) for row in rows]),
        "measured": measured,
        "body_mass_mask": ~torch.isnan(measurements[:, 3]),
    }
    if standardize:
        known = measurements[measured]
        measurements = (measurements - known.mean(0)) / known.std(0)
    data["x"] = measurements[:, :3].float()
    data["body_mass"] = measurements[:, 3].float()
    if not keep_unmeasured:
        data = {key: value[measured] for key, value in data.items()}
    return data
