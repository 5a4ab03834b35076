r"""multiloss_helpers: the package behind the book *Multiple Losses in PyTorch*.

Every chapter imports it as ``import multiloss_helpers as mlh``. It holds what a
reader would copy into their own project: seeded synthetic data, small
multi-head models, focal losses and class-imbalance weights, loss combiners,
per-loss gradient tools, task-weighting strategies behind one protocol,
loss-weight schedules, the training loop that records every loss component,
metrics for imbalanced data, and the book's figures. Each public name is
documented with an example and tested.

The public names are those of each library module's ``__all__``; the list below is
built from them, so adding a name is one edit in its module (and its entry in
``book/api.md``). ``mlh.chapters`` (the book's set-ups and chapter 11's workers) and
``mlh.exercises`` (the exercise checks) are the book's support code.
"""

from __future__ import annotations

import sys as _sys

from . import chapters as chapters  # the book's support code: mlh.chapters.<name>
from . import exercises as exercises  # the exercise checks: mlh.exercises.check_<name>
from .class_balance import *
from .combine import *
from .composite import *
from .constraints import *
from .data import *
from .datasets import *
from .dice import *
from .distributed import *
from .gan_data import *
from .grads import *
from .history import *
from .losses import *
from .masking import *
from .metrics import *
from .mixing import *
from .models import *
from .moe import *
from .multiobjective import *
from .plotting import *
from .profiling import *
from .regularisers import *
from .reversal import *
from .schedules import *
from .seeding import *
from .stats import *
from .train import *
from .weighting import *

__version__ = "0.3.0"

#: The library modules whose ``__all__`` make up the package's public names: every public
#: submodule imported above by its star import (the book's support code, ``chapters`` and
#: ``exercises``, is not library API). One list to edit: the star imports.
LIBRARY_MODULES = tuple(
    module
    for name, module in sorted(_sys.modules.items())
    if name.startswith(f"{__name__}.")
    and name.count(".") == 1
    and not name.rpartition(".")[2].startswith("_")
    and name.rpartition(".")[2] not in {"chapters", "exercises"}
)

__all__ = sorted({"__version__", "exercises", *(n for m in LIBRARY_MODULES for n in m.__all__)})
