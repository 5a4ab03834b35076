r"""One loader that mixes several, one task per batch.

When tasks come from different data sets, each has its own loader, and a training step
takes a batch of one task. Which task comes next is the sampling strategy: in turn, in
proportion to the data sets' sizes, or in proportion to the sizes raised to
:math:`1 / T` (temperature sampling, as in multilingual translation), which lifts the
small tasks towards a uniform share.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch

from ._validation import check_choice, check_float, check_generator, check_int, describe

__all__ = ["TaskMixer"]

STRATEGIES = ("round_robin", "proportional", "temperature")


def _loader_length(name: str, loader: Any) -> int:
    try:
        return len(loader)
    except TypeError:
        raise TypeError(
            f"`loaders[{name!r}]` has no len(): give `sizes` (and `steps_per_epoch`), "
            f"got {describe(loader)}"
        ) from None


class TaskMixer:
    r"""Yield ``(task_name, batch)``: one batch of one task per step, by a named strategy.

    With :math:`n_i` the size of task :math:`i`, a step takes task :math:`i` with
    probability

    .. math::

        p_i = \frac{n_i}{\sum_j n_j} \quad \text{("proportional")}, \qquad
        p_i = \frac{n_i^{1/T}}{\sum_j n_j^{1/T}} \quad \text{("temperature")}

    drawn independently at each step; ``"round_robin"`` takes the tasks in turn, in the
    order of ``loaders``. :math:`T = 1` is proportional sampling and :math:`T \to \infty`
    uniform; :math:`T = 5` is what Arivazhagan et al. 2019 found best for translation
    into and out of 103 languages. The size :math:`n_i` is the loader's ``len()``, the
    number of its batches per epoch (for loaders with one batch size, proportional to the
    number of samples); give ``sizes`` to use anything else, e.g. sample counts.

    Epoch: ``steps_per_epoch`` steps, by default :math:`\sum_i n_i` of the loaders'
    lengths, so that one epoch of proportional sampling takes, on average, one epoch of
    every loader; ``len(mixer)`` is that number. A loader that runs out is restarted
    (``iter(loader)`` again: a :class:`BatchLoader` reshuffles), within an epoch and across
    epochs: each loader goes through its own epochs independently of the mixer's, and
    every loader's position carries over from one mixer epoch to the next. Under
    round robin a small task therefore repeats its batches more often than a large one.

    With :func:`fit`, ``loss_fn(model, item)`` receives the pair: ``task, batch = item``.

    Seeding: the task order of each epoch is drawn from the mixer's own
    ``torch.Generator``, made from ``seed``; iterating again continues that generator, so
    a fresh seeded mixer over fresh seeded loaders gives the same sequence on every run.
    The loaders' own shuffling is theirs; ``fit(seed=...)`` restarts the mixer's
    generator from its seed, but not the loaders' generators or their positions.

    Args:
        loaders: a mapping of task name to an iterable of batches (a
            :class:`BatchLoader`, a ``DataLoader``, a list), in the order round robin
            uses.
        strategy: ``"round_robin"``, ``"proportional"`` or ``"temperature"``.
            Default: ``"round_robin"``.
        temperature: :math:`T > 0` for ``"temperature"`` (ignored otherwise).
            Default: ``2.0``.
        seed: an ``int`` seed or a CPU ``torch.Generator`` for the task order.
            Default: ``0``.
        steps_per_epoch: batches per mixer epoch. Default: ``None`` (the sum of the
            loaders' lengths).
        sizes: the :math:`n_i` per task name, positive. Default: ``None`` (the loaders'
            lengths).

    Example:
        >>> loaders = {"big": [f"b{i}" for i in range(6)], "small": ["s0", "s1"]}
        >>> mixer = TaskMixer(loaders)  # round robin
        >>> len(mixer), [batch for _, batch in mixer]
        (8, ['b0', 's0', 'b1', 's1', 'b2', 's0', 'b3', 's1'])
        >>> mixer = TaskMixer(loaders, strategy="temperature", temperature=2.0)
        >>> {name: round(p, 3) for name, p in mixer.probabilities.items()}
        {'big': 0.634, 'small': 0.366}
        >>> mixer = TaskMixer(loaders, strategy="proportional", steps_per_epoch=400, seed=0)
        >>> mixer.probabilities
        {'big': 0.75, 'small': 0.25}
        >>> sum(name == "small" for name, _ in mixer)  # about 400 / 4
        95

    Paper: Arivazhagan et al. 2019, "Massively Multilingual Neural Machine Translation in
    the Wild: Findings and Challenges",
    `arXiv:1907.05019 <https://arxiv.org/abs/1907.05019>`_ (temperature sampling).
    """

    def __init__(
        self,
        loaders: Mapping[str, Iterable[Any]],
        *,
        strategy: str = "round_robin",
        temperature: float = 2.0,
        seed: int | torch.Generator = 0,
        steps_per_epoch: int | None = None,
        sizes: Mapping[str, float] | None = None,
    ) -> None:
        if not isinstance(loaders, Mapping) or not loaders:
            raise TypeError(
                f"`loaders` must be a non-empty mapping of task name to loader, "
                f"got {describe(loaders)}"
            )
        for name, loader in loaders.items():
            if not isinstance(name, str):
                raise TypeError(f"`loaders` keys must be task names (str), got {describe(name)}")
            if not isinstance(loader, Iterable):
                raise TypeError(f"`loaders[{name!r}]` must be iterable, got {describe(loader)}")
        self.loaders = dict(loaders)
        self.strategy = check_choice(strategy, "strategy", STRATEGIES)
        self.temperature = check_float(temperature, "temperature", minimum=0.0, open_minimum=True)
        self.generator = check_generator(seed)
        self.sizes = self._sizes(sizes)
        if steps_per_epoch is None:
            lengths = [_loader_length(name, loader) for name, loader in self.loaders.items()]
            steps_per_epoch = sum(lengths)
            if steps_per_epoch == 0:
                raise ValueError("every loader in `loaders` is empty: no step to take")
        self.steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch", minimum=1)
        self._iterators: dict[str, Iterator[Any]] = {}
        self._turn = 0  # round robin's next task, carried across epochs

    def _sizes(self, sizes: Mapping[str, float] | None) -> dict[str, float]:
        if sizes is None:
            if self.strategy == "round_robin" and not all(
                hasattr(loader, "__len__") for loader in self.loaders.values()
            ):
                return {}  # round robin needs no sizes
            return {
                name: float(_loader_length(name, loader)) for name, loader in self.loaders.items()
            }
        if not isinstance(sizes, Mapping):
            raise TypeError(
                f"`sizes` must be a mapping of task name to size, got {describe(sizes)}"
            )
        if set(sizes) != set(self.loaders):
            raise ValueError(
                f"`sizes` must have the task names of `loaders`, {sorted(self.loaders)}, "
                f"got {sorted(map(str, sizes))}"
            )
        return {
            name: check_float(sizes[name], f"sizes[{name!r}]", minimum=0.0, open_minimum=True)
            for name in self.loaders
        }

    @property
    def probabilities(self) -> dict[str, float]:
        """The probability of each task at a step; under round robin, its share of the turns."""
        names = list(self.loaders)
        if self.strategy == "round_robin":
            return {name: 1 / len(names) for name in names}
        sizes = torch.tensor([self.sizes[name] for name in names], dtype=torch.float64)
        if not bool((sizes > 0).any()):
            raise ValueError(f"every task has size 0: {self.sizes}")
        if self.strategy == "temperature":
            # n^(1/T) in log space: large sizes and small temperatures do not overflow
            logits = sizes.log() / self.temperature
            weights = torch.softmax(logits, dim=0)
        else:
            weights = sizes / sizes.sum()
        return dict(zip(names, weights.tolist()))

    def __len__(self) -> int:
        return self.steps_per_epoch

    def _next_batch(self, name: str) -> Any:
        iterator = self._iterators.get(name)
        if iterator is not None:
            try:
                return next(iterator)
            except StopIteration:
                pass
        self._iterators[name] = iterator = iter(self.loaders[name])  # restart it
        try:
            return next(iterator)
        except StopIteration:
            raise ValueError(f"`loaders[{name!r}]` yields no batch at all") from None

    def _order(self) -> list[str]:
        names = list(self.loaders)
        if self.strategy == "round_robin":
            order = [names[(self._turn + step) % len(names)] for step in range(len(self))]
            self._turn = (self._turn + len(self)) % len(names)
            return order
        weights = torch.tensor(list(self.probabilities.values()), dtype=torch.float64)
        draws = torch.multinomial(weights, len(self), replacement=True, generator=self.generator)
        return [names[i] for i in draws.tolist()]

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for name in self._order():
            yield name, self._next_batch(name)

    def __repr__(self) -> str:
        tasks = ", ".join(f"{name}: {self.sizes.get(name, '?')}" for name in self.loaders)
        extra = f", temperature={self.temperature}" if self.strategy == "temperature" else ""
        return (
            f"TaskMixer(<{tasks}>, strategy={self.strategy!r}{extra}, "
            f"steps_per_epoch={self.steps_per_epoch})"
        )
