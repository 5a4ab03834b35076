r"""Small networks for the book: a shared trunk with one head per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from ._validation import (
    autocast_enabled,
    check_choice,
    check_float,
    check_int,
    check_module_names,
    check_seed,
    describe,
)

__all__ = ["MultiHeadNet", "default_device"]

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


def default_device() -> torch.device:
    r"""The device the book's notebooks use: CUDA when available, else the CPU.

    Example:
        >>> default_device().type in {"cpu", "cuda"}
        True
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class MultiHeadNet(nn.Module):
    r"""A multilayer perceptron trunk shared by several linear heads.

    ``forward(x)`` returns a dictionary with one output per head, so that each
    task's loss reads its own output by name. The trunk is exposed as
    ``self.trunk`` and its parameters by :meth:`shared_parameters`, which is what
    gradient-based weighting methods look at.

    Args:
        in_features: input features ``F``.
        heads: maps a head name to its output size, e.g. ``{"cls": 3, "reg": 1}``.
        hidden: widths of the trunk's hidden layers (at least one).
            Default: ``(64, 64)``.
        activation: one of ``"relu"``, ``"gelu"``, ``"tanh"``, ``"silu"``.
            Default: ``"relu"``.
        dropout: dropout probability after each hidden activation.
            Default: ``0.0``.
        seed: when given, the weights are initialised from this seed without
            touching PyTorch's global random state. Default: ``None`` (drawn
            from the global generator).

    Dropout masks are drawn at training time from torch's *global* generator
    (``nn.Dropout`` takes no generator), which torch seeds randomly in each
    process. For a run that is the same in every process, seed it: call
    :func:`~multiloss_helpers.seed_everything` once (as every chapter does),
    or pass ``seed=`` to :func:`~multiloss_helpers.fit`, which reseeds the
    global generator at every epoch and restores it afterwards.

    Shape:
        - Input: ``(N, F)``.
        - Output: ``{name: (N, heads[name])}``.

    Example:
        >>> net = MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(16,), seed=0)
        >>> out = net(torch.zeros(2, 4))
        >>> {k: tuple(v.shape) for k, v in out.items()}
        {'cls': (2, 3), 'reg': (2, 1)}
    """

    def __init__(
        self,
        in_features: int,
        heads: Mapping[str, int],
        *,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        in_features = check_int(in_features, "in_features", minimum=1)
        heads = check_module_names(heads, "heads", "head name to output size")
        for name, size in heads.items():
            check_int(size, f"heads[{name!r}]", minimum=1)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden:
            raise TypeError(
                f"`hidden` must be a non-empty sequence of layer widths, got {describe(hidden)}"
            )
        widths = [check_int(w, f"hidden[{i}]", minimum=1) for i, w in enumerate(hidden)]
        check_choice(activation, "activation", sorted(_ACTIVATIONS))
        dropout = check_float(dropout, "dropout", minimum=0.0, maximum=1.0, open_maximum=True)
        if seed is not None:
            seed = check_seed(seed, "seed")  # torch's range, [0, 2**64)

        self.in_features = in_features
        self.head_sizes = dict(heads)
        self.hidden = tuple(widths)
        self.activation = activation
        self.dropout = dropout
        self.seed = seed

        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            layers: list[nn.Module] = []
            width = in_features
            for out in widths:
                layers += [nn.Linear(width, out), _ACTIVATIONS[activation]()]
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
                width = out
            self.trunk = nn.Sequential(*layers)
            self.heads = nn.ModuleDict(
                {name: nn.Linear(width, size) for name, size in heads.items()}
            )

    def features(self, x: Tensor) -> Tensor:
        r"""The shared representation: the trunk's output, shape ``(N, hidden[-1])``."""
        if not isinstance(x, Tensor):
            raise TypeError(f"`x` must be a torch.Tensor, got {describe(x)}")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"`x` must have shape (N, {self.in_features}), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"`x` must be a real floating-point tensor, got {x.dtype}")
        dtype = next(self.parameters()).dtype
        if x.dtype != dtype and not autocast_enabled(x.device.type):
            raise TypeError(
                f"`x` must have the model's dtype {dtype}, got {x.dtype}; convert one of "
                f"them (e.g. `x.to({dtype})` or `model.to({x.dtype})`)"
            )
        return self.trunk(x)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        r"""One output per head, ``{name: (N, heads[name])}``."""
        shared = self.features(x)
        return {name: head(shared) for name, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        r"""The trunk's parameters, which every task's gradient reaches."""
        return list(self.trunk.parameters())

    def head_parameters(self, name: str) -> list[nn.Parameter]:
        r"""The parameters of one head, which only that task's loss reaches."""
        check_choice(name, "name", list(self.heads))
        return list(self.heads[name].parameters())

    def extra_repr(self) -> str:
        args = [
            str(self.in_features),
            repr(self.head_sizes),
            f"hidden={self.hidden!r}",
            f"activation={self.activation!r}",
            f"dropout={self.dropout!r}",
            f"seed={self.seed!r}",
        ]
        return ", ".join(args)
