r"""The training loop every chapter uses, with per-component history.

:func:`fit` is a short driver over small pieces: :func:`_check_fit_args` (the
argument checks), :func:`_train_epoch` and :func:`_train_step` (one epoch, one
step), :func:`_validate` (the validation pass, in :func:`_eval_mode`) and the
hooks that callbacks and a weighting strategy plug into.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ._validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_seed,
    describe,
)
from .history import LossHistory

__all__ = ["Callback", "evaluate", "fit", "predict", "unpack_loss"]

Batch = Any
LossFn = Callable[[nn.Module, Batch], Any]
BackwardFn = Callable[[Tensor, dict[str, Tensor]], None]

_HOOKS = ("on_epoch_start", "on_step_end", "on_epoch_end")
_FINITE_CHECKS = ("auto", "step", "epoch")


class Callback:
    r"""Base class for :func:`fit` callbacks; every hook does nothing by default.

    A callback is any object with one or more of these methods (subclassing is
    optional); :func:`fit` calls each one it finds, in the order the callbacks
    were given. Every hook receives the same three arguments:

    - ``on_epoch_start(epoch, history, model)``: before the epoch's first batch
      (e.g. set this epoch's loss weight or reversal scale);
    - ``on_step_end(epoch, history, model)``: after each optimizer step, once the
      step is logged (``history.num_steps - 1`` is its index);
    - ``on_epoch_end(epoch, history, model)``: after the epoch's train means,
      the weighting's ``epoch_end``, the validation pass and the scheduler step.

    ``epoch`` is the global epoch index (it continues when ``history=`` continues
    a run). A plain function given as a callback is an ``on_epoch_end`` hook.
    Reading values from ``history`` synchronises with the device, so an
    ``on_step_end`` hook on a GPU should avoid it.

    Example:
        >>> class Ramp(Callback):
        ...     def __init__(self):
        ...         self.weight = 0.0
        ...     def on_epoch_start(self, epoch, history, model):
        ...         self.weight = min(1.0, epoch / 4)
        >>> ramp = Ramp()
        >>> ramp.on_epoch_start(2, LossHistory(), None)
        >>> ramp.weight
        0.5
    """

    def on_epoch_start(self, epoch: int, history: LossHistory, model: nn.Module) -> None:
        r"""Called before each training epoch."""

    def on_step_end(self, epoch: int, history: LossHistory, model: nn.Module) -> None:
        r"""Called after each optimizer step."""

    def on_epoch_end(self, epoch: int, history: LossHistory, model: nn.Module) -> None:
        r"""Called after each epoch (train means, validation, scheduler)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Weighting(Protocol):
    num_tasks: int

    def backward(self, losses: Tensor) -> Tensor: ...

    def epoch_end(self, epoch_losses: Tensor) -> None: ...


# ---------------------------------------------------------------------- results and batches
def _check_component(name: Any, value: Any) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"loss component {name!r} must be a scalar tensor, got {describe(value)}")
    if value.numel() != 1:
        raise ValueError(
            f"loss component {name!r} must be a scalar tensor (one element), got shape "
            f"{tuple(value.shape)}; reduce it (e.g. `.mean()`) in `loss_fn`"
        )
    if not value.is_floating_point():
        raise TypeError(
            f"loss component {name!r} must be a floating-point tensor, got {value.dtype}; "
            "use `.float()` (e.g. for an accuracy)"
        )
    return value.reshape(())


def unpack_loss(result: Any) -> tuple[Tensor, dict[str, Tensor]]:
    r"""Read a loss function's result as ``(total, components)``, checked.

    Three forms are accepted, so that a plain function, a ``(total, dict)``
    tuple and a combiner's result object all work with :func:`fit`:

    - a scalar tensor: the total, with no named components;
    - a pair ``(total, {name: scalar tensor})``;
    - an object with ``.total`` and ``.components`` attributes.

    The total and every component must be floating-point tensors with one
    element: another type is a ``TypeError``, another shape a ``ValueError``.
    These checks read only shapes and dtypes, never values, so they cost no
    device synchronisation.

    Args:
        result: what ``loss_fn(model, batch)`` returned.

    Returns:
        ``(total, components)``: the total as a 0-d tensor and a new dict of 0-d
        tensors, in the order given.

    Example:
        >>> total, parts = unpack_loss((torch.tensor(3.0), {"a": torch.tensor(1.0)}))
        >>> float(total), list(parts)
        (3.0, ['a'])
    """
    if isinstance(result, Tensor):
        total, components = result, {}
    elif hasattr(result, "total") and hasattr(result, "components"):
        total, components = result.total, result.components
    elif isinstance(result, tuple) and len(result) == 2:
        total, components = result
    else:
        raise TypeError(
            "`loss_fn` must return a scalar tensor, a pair (total, {name: loss}) or an object "
            f"with `.total` and `.components`, got {describe(result)}"
        )
    if not isinstance(total, Tensor):
        raise TypeError(f"the total loss must be a scalar tensor, got {describe(total)}")
    if total.numel() != 1:
        raise ValueError(
            f"the total loss must be a scalar tensor (one element), got shape {tuple(total.shape)}"
        )
    if not isinstance(components, Mapping):
        raise TypeError(
            f"the loss components must be a mapping of name to loss, got {describe(components)}"
        )
    if "total" in components:
        raise ValueError(
            "a loss component may not be called 'total': that name is kept for the sum"
        )
    total = _check_component("total", total)
    return total, {name: _check_component(name, value) for name, value in components.items()}


def _first_length(batch: Any) -> int | None:
    r"""The first dimension of the first tensor with one, searching nested containers
    (e.g. ``(task_name, {name: tensor})`` from a :class:`~multiloss_helpers.TaskMixer`)."""
    if isinstance(batch, Tensor):
        return len(batch) if batch.dim() > 0 else None
    if isinstance(batch, Mapping):
        batch = batch.values()
    elif not isinstance(batch, (list, tuple)):
        return None
    for value in batch:
        found = _first_length(value)
        if found is not None:
            return found
    return None


def _batch_size(batch: Batch) -> int:
    r"""Number of samples in a batch: the first dimension of its first tensor."""
    if isinstance(batch, Tensor):
        return len(batch) if batch.dim() else 1
    found = _first_length(batch)
    if found is None:
        raise TypeError(f"a batch must contain at least one tensor, got {describe(batch)}")
    return found


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _resolve_device(model: nn.Module, device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else _model_device(model)


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {describe(model)}")


def _check_loader(loader: Any, name: str) -> None:
    if isinstance(loader, (Tensor, Mapping)) or not isinstance(loader, Iterable):
        raise TypeError(
            f"`{name}` must be an iterable of batches (a BatchLoader or a DataLoader), "
            f"got {describe(loader)}"
        )


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    r"""``model.eval()`` for the block; the mode it had is restored on every exit path."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class _WeightedMeans:
    r"""Running sample-weighted means of scalar components, kept on the device.

    Each component is divided by the samples of the batches it was present in,
    so a loss that is absent from some batches (staged or gated) gets its true
    mean, not one diluted by the batches without it.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, components: Mapping[str, Tensor], n: int) -> None:
        for name, value in components.items():
            value = value.detach().reshape(()).float() * n
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + n

    def means(self, what: str) -> dict[str, Tensor]:
        if not self.counts:
            raise ValueError(f"{what} yielded no batch")
        return {name: value / self.counts[name] for name, value in self.sums.items()}


def _mean_components(
    model: nn.Module, loss_fn: LossFn, loader: Iterable[Batch], device: torch.device
) -> dict[str, Tensor]:
    r"""Sample-weighted mean of every component over ``loader`` (no gradients)."""
    means = _WeightedMeans()
    for batch in loader:
        batch = _to_device(batch, device)
        total, components = unpack_loss(loss_fn(model, batch))
        means.add({"total": total, **components}, _batch_size(batch))
    return means.means("the loader")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loss_fn: LossFn,
    loader: Iterable[Batch],
    *,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    r"""The mean of every loss component over a dataset, in evaluation mode.

    Means are weighted by batch size, so a smaller last batch counts for what
    it holds; a component absent from some batches is averaged over the
    batches that have it. The model is put in ``eval()`` mode for the pass and
    restored to the mode it was in, also when ``loss_fn`` raises.

    Args:
        model: the network.
        loss_fn: ``loss_fn(model, batch)``, as for :func:`fit`.
        loader: an iterable of batches.
        device: where batches go. Default: ``None``, the model's device.

    Returns:
        ``{"total": ..., name: ...}`` as Python floats.

    Example:
        >>> from multiloss_helpers import BatchLoader, MultiHeadNet, make_multitask_data
        >>> data = make_multitask_data(64, n_features=4, seed=0)
        >>> net = MultiHeadNet(4, {"reg": 1}, hidden=(8,), seed=0)
        >>> loss_fn = lambda m, b: torch.nn.functional.mse_loss(m(b["x"])["reg"], b["y_reg"])
        >>> sorted(evaluate(net, loss_fn, BatchLoader(data, 16, shuffle=False)))
        ['total']
    """
    _check_model(model)
    _check_loader(loader, "loader")
    device = _resolve_device(model, device)
    with _eval_mode(model):
        means = _mean_components(model, loss_fn, loader, device)
    values = torch.stack(list(means.values())).tolist()
    return dict(zip(means, values))


def _model_input(batch: Batch, input_key: str) -> Any:
    if isinstance(batch, Mapping):
        if input_key not in batch:
            raise ValueError(f"`input_key` {input_key!r} is not a key of the batch {sorted(batch)}")
        return batch[input_key]
    if isinstance(batch, (list, tuple)):
        return batch[0]
    return batch


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[Batch],
    *,
    input_key: str = "x",
    device: torch.device | str | None = None,
) -> Any:
    r"""Run the model over a dataset in evaluation mode and concatenate its outputs.

    The model's mode is restored afterwards, also when the model raises.

    Args:
        model: the network; its output may be a tensor or a mapping of tensors.
        loader: an iterable of batches; a batch that is a mapping is fed as
            ``batch[input_key]``, a tuple or list by its first element.
        input_key: the input's key in mapping batches. Default: ``"x"``.
        device: where batches go. Default: ``None``, the model's device.

    Returns:
        The outputs for the whole dataset on the CPU and in loader order; a
        tensor, or a dictionary of tensors when the model returns one.

    Example:
        >>> from multiloss_helpers import BatchLoader, MultiHeadNet, make_multitask_data
        >>> data = make_multitask_data(50, n_features=4, seed=0)
        >>> net = MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(8,), seed=0)
        >>> out = predict(net, BatchLoader(data, 16, shuffle=False))
        >>> tuple(out["cls"].shape)
        (50, 3)
    """
    _check_model(model)
    _check_loader(loader, "loader")
    device = _resolve_device(model, device)
    with _eval_mode(model):
        chunks = [model(_to_device(_model_input(b, input_key), device)) for b in loader]
    if not chunks:
        raise ValueError("the loader yielded no batch")
    if isinstance(chunks[0], Mapping):
        return {k: torch.cat([c[k] for c in chunks]).cpu() for k in chunks[0]}
    return torch.cat(chunks).cpu()


# ---------------------------------------------------------------------- fit: the pieces
@dataclass
class _Run:
    r"""Everything a training run holds fixed, checked once by :func:`_check_fit_args`."""

    model: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    device: torch.device
    history: LossHistory
    backward: BackwardFn | None = None
    weighting: _Weighting | None = None
    max_grad_norm: float | None = None
    check_each_step: bool = True
    hooks: dict[str, list[Callable[..., Any]]] = field(default_factory=dict)

    def call(self, hook: str, epoch: int) -> None:
        for fn in self.hooks.get(hook, ()):
            fn(epoch, self.history, self.model)


def _collect_hooks(callbacks: Any) -> dict[str, list[Callable[..., Any]]]:
    r"""``{hook name: [bound methods]}`` from the ``callbacks`` argument."""
    if callbacks is None:
        return {}
    if not isinstance(callbacks, Sequence) or isinstance(callbacks, (str, bytes)):
        raise TypeError(f"`callbacks` must be a list of callbacks, got {describe(callbacks)}")
    hooks: dict[str, list[Callable[..., Any]]] = {name: [] for name in _HOOKS}
    for i, callback in enumerate(callbacks):
        if isinstance(callback, type):  # its hooks would be unbound: epoch taken as self
            raise TypeError(
                f"`callbacks[{i}]` must be a callback instance, got the class "
                f"{callback.__name__}; call it: {callback.__name__}()"
            )
        found = [name for name in _HOOKS if callable(getattr(callback, name, None))]
        if found:
            for name in found:
                hooks[name].append(getattr(callback, name))
        elif callable(callback):
            hooks["on_epoch_end"].append(callback)
        else:
            raise TypeError(
                f"`callbacks[{i}]` must have a method among {_HOOKS} or be a function "
                f"(an on_epoch_end hook), got {describe(callback)}"
            )
    return hooks


def _check_weighting(weighting: Any, backward: Any) -> Any:
    r"""``weighting`` must follow the :class:`~multiloss_helpers.Weighting` protocol."""
    if weighting is None:
        return None
    if backward is not None:
        raise ValueError(
            "pass either `weighting` or `backward`, not both: a weighting strategy "
            "already does the backward pass"
        )
    missing = [m for m in ("backward", "epoch_end") if not callable(getattr(weighting, m, None))]
    if missing or not hasattr(weighting, "num_tasks"):
        raise TypeError(
            "`weighting` must follow the mlh.Weighting protocol (`num_tasks`, "
            f"`backward(losses)`, `epoch_end(epoch_losses)`), got {describe(weighting)}"
        )
    check_int(weighting.num_tasks, "weighting.num_tasks", minimum=1)
    return weighting


def _check_callables(loss_fn: Any, optimizer: Any, scheduler: Any, backward: Any) -> None:
    if not callable(loss_fn):
        raise TypeError(
            f"`loss_fn` must be callable as loss_fn(model, batch), got {describe(loss_fn)}"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {describe(optimizer)}")
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"`scheduler` must have a step() method, got {describe(scheduler)}")
    if backward is not None and not callable(backward):
        raise TypeError(
            f"`backward` must be callable as backward(total, components), got {describe(backward)}"
        )


def _check_fit_args(model: Any, loss_fn: Any, optimizer: Any, **kw: Any) -> _Run:
    r"""Check every argument of :func:`fit` and gather them into a :class:`_Run`."""
    _check_model(model)
    _check_callables(loss_fn, optimizer, kw["scheduler"], kw["backward"])
    _check_loader(kw["train_loader"], "train_loader")
    if kw["val_loader"] is not None:
        _check_loader(kw["val_loader"], "val_loader")
    check_bool(kw["progress"], "progress")
    grad_norm = kw["max_grad_norm"]
    if grad_norm is not None:
        grad_norm = check_float(grad_norm, "max_grad_norm", minimum=0.0, open_minimum=True)
    history = kw["history"] if kw["history"] is not None else LossHistory()
    if not isinstance(history, LossHistory):
        raise TypeError(f"`history` must be a LossHistory, got {describe(history)}")
    device = _resolve_device(model, kw["device"])
    check = check_choice(kw["check_finite"], "check_finite", _FINITE_CHECKS)
    return _Run(
        model=model,
        loss_fn=loss_fn,
        optimizer=optimizer,
        device=device,
        history=history,
        backward=kw["backward"],
        weighting=_check_weighting(kw["weighting"], kw["backward"]),
        max_grad_norm=grad_norm,
        check_each_step=check == "step" or (check == "auto" and device.type == "cpu"),
        hooks=_collect_hooks(kw["callbacks"]),
    )


def _non_finite(
    value: float, step: int, epoch: int, applied: bool, name: str = "total"
) -> FloatingPointError:
    state = (
        "that step and the later ones of this epoch have been applied (on an accelerator "
        "the check runs once per epoch; pass check_finite='step' to stop before the step)"
        if applied
        else "the optimizer step was not applied"
    )
    what = "the total loss" if name == "total" else f"the loss component {name!r}"
    return FloatingPointError(
        f"{what} became {value} at step {step} of epoch {epoch}; {state}. Lower the "
        "learning rate, clip gradients (`max_grad_norm`) or check the loss for log(0) and "
        "division by zero"
    )


def _task_losses(run: _Run, components: dict[str, Tensor]) -> Tensor:
    r"""The weighting's ``(T,)`` task losses: the components in their dict order."""
    assert run.weighting is not None
    if len(components) != run.weighting.num_tasks:
        raise ValueError(
            f"`weighting` has num_tasks={run.weighting.num_tasks} but `loss_fn` returned "
            f"{len(components)} components {list(components)}: with `weighting`, the "
            "components are the task losses, one per task"
        )
    return torch.stack(list(components.values()))


def _backward(run: _Run, total: Tensor, components: dict[str, Tensor]) -> dict[str, Tensor]:
    r"""Leave the gradients in ``.grad``; return the weights applied, as ``weight/<task>``."""
    if run.weighting is not None:
        weights = run.weighting.backward(_task_losses(run, components))
        if not isinstance(weights, Tensor) or weights.shape != (len(components),):
            raise ValueError(
                f"`weighting.backward` must return one weight per task, shape "
                f"({len(components)},), got {describe(weights)}"
            )
        return {f"weight/{name}": w for name, w in zip(components, weights.detach().unbind())}
    if not total.requires_grad:
        raise ValueError(
            "the total loss returned by `loss_fn` does not require grad, so "
            "backward() cannot train anything: was it built with torch.tensor(...) "
            "or .item(), or inside torch.no_grad()? Combine losses with + or "
            "torch.stack(...).sum() to keep the graph"
        )
    if run.backward is None:
        total.backward()
    else:
        run.backward(total, components)
    return {}


def _checked(run: _Run, total: Tensor, components: dict[str, Tensor]) -> dict[str, Tensor]:
    r"""The values the finite check reads: the total, and with ``weighting`` the task
    losses too, since those are what the strategy backpropagates."""
    return {"total": total, **components} if run.weighting is not None else {"total": total}


def _check_step(
    run: _Run, total: Tensor, components: dict[str, Tensor], step: int, epoch: int
) -> None:
    r"""The per-step finite check, before anything is applied.

    With ``check_finite`` per step: the total, and with a weighting the task losses. A
    strategy checks its CPU losses anyway, so those are named here even when the total
    is only checked once per epoch.
    """
    strategy_checks = run.weighting is not None and total.device.type == "cpu"
    if not (run.check_each_step or strategy_checks):
        return
    for name, value in _checked(run, total, components).items():
        if name == "total" and not run.check_each_step:
            continue  # checked once per epoch, as asked
        if not math.isfinite(float(value.detach())):
            raise _non_finite(float(value.detach()), step, epoch, applied=False, name=name)


def _train_step(run: _Run, batch: Batch, epoch: int, step: int) -> tuple[dict[str, Tensor], int]:
    r"""One optimizer step; returns the logged record and the batch size."""
    batch = _to_device(batch, run.device)
    total, components = unpack_loss(run.loss_fn(run.model, batch))
    _check_step(run, total, components, step, epoch)
    run.optimizer.zero_grad(set_to_none=True)
    weights = _backward(run, total, components)
    if run.max_grad_norm is not None:
        nn.utils.clip_grad_norm_(run.model.parameters(), run.max_grad_norm)
    run.optimizer.step()
    record = {"total": total, **components, **weights}
    run.history.log_step(record, epoch=epoch)
    run.call("on_step_end", epoch)
    return record, _batch_size(batch)


def _train_epoch(run: _Run, loader: Iterable[Batch], epoch: int) -> dict[str, Tensor]:
    r"""One pass over ``loader`` in train mode; returns the sample-weighted means."""
    run.model.train()
    means = _WeightedMeans()
    checked: list[dict[str, Tensor]] = []
    for step, batch in enumerate(loader):
        record, n = _train_step(run, batch, epoch, step)
        means.add(record, n)
        if not run.check_each_step:
            components = {k: v for k, v in record.items() if not k.startswith("weight/")}
            checked.append(_checked(run, record["total"], components))
    train_means = means.means("`train_loader`")
    if checked:  # one synchronisation per epoch
        values = torch.stack([torch.stack(list(c.values())).detach().float() for c in checked])
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            bad, column = (int(i) for i in (~finite).nonzero()[0])
            name = list(checked[bad])[column]
            raise _non_finite(float(values[bad, column]), bad, epoch, applied=True, name=name)
    return train_means


def _validate(run: _Run, loader: Iterable[Batch]) -> dict[str, Tensor]:
    r"""The validation means, in eval mode and without gradients."""
    with _eval_mode(run.model), torch.no_grad():
        return _mean_components(run.model, run.loss_fn, loader, run.device)


def _end_epoch(run: _Run, train_means: dict[str, Tensor], epoch: int, val_loader: Any) -> None:
    run.history.log_epoch(train_means, epoch=epoch, split="train")
    if run.weighting is not None:
        tasks = [n.removeprefix("weight/") for n in train_means if n.startswith("weight/")]
        run.weighting.epoch_end(torch.stack([train_means[task] for task in tasks]))
    if val_loader is not None:
        run.history.log_epoch(_validate(run, val_loader), epoch=epoch, split="val")


def _update_bar(bar: Any, history: LossHistory, validating: bool) -> None:
    if bar is None:
        return
    postfix = {"train": f"{history.last('total'):.4g}"}
    if validating:
        postfix["val"] = f"{history.last('total', split='val'):.4g}"
    bar.set_postfix(postfix, refresh=False)
    bar.update(1)


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="epochs", unit="epoch", leave=True)


def _loader_generators(loader: Any) -> list[torch.Generator]:
    r"""The generators a loader shuffles with: a ``BatchLoader``'s, a ``DataLoader``'s
    and its sampler's (each once)."""
    found: dict[int, torch.Generator] = {}
    candidates = [loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)]
    candidates.append(getattr(candidates[-1], "sampler", None))
    for holder in candidates:
        generator = getattr(holder, "generator", None)
        if isinstance(generator, torch.Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())


@contextlib.contextmanager
def _seeded_loader(seed: int | None, loader: Any) -> Iterator[None]:
    r"""For a seeded run, restart the loader's own generators from their seeds; restore after.

    A loader's generator is not torch's global one: without this, a loader passed to two
    seeded runs would continue its own stream and give the second run other batches. A
    fresh loader is already at its seed, so its run is the same as before.
    """
    generators = [] if seed is None else _loader_generators(loader)
    states = [g.get_state() for g in generators]
    for generator in generators:
        generator.manual_seed(generator.initial_seed())
    try:
        yield
    finally:
        for generator, state in zip(generators, states):
            generator.set_state(state)


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[Callable[[int], object]]:
    r"""Fork torch's global generators for the run; yield ``reseed(epoch)``."""
    if seed is None:
        yield lambda epoch: None
        return
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    # torch.manual_seed reseeds every device's generator; fork_rng restores the CPU's and
    # CUDA's, and the MPS generator is saved and restored here (fork_rng's device_type
    # does not cover it on every supported torch version).
    mps_state = torch.mps.get_rng_state() if device.type == "mps" else None
    try:
        with torch.random.fork_rng(devices=devices):
            yield lambda epoch: torch.manual_seed(hash((seed, epoch)) & (2**63 - 1))
    finally:
        if mps_state is not None:
            torch.mps.set_rng_state(mps_state)


@contextlib.contextmanager
def _restore_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    try:
        yield
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    loss_fn: LossFn,
    train_loader: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    val_loader: Iterable[Batch] | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
    scheduler: Any = None,
    max_grad_norm: float | None = None,
    history: LossHistory | None = None,
    backward: BackwardFn | None = None,
    weighting: Any = None,
    callbacks: Sequence[Any] | None = None,
    seed: int | None = None,
    check_finite: str = "auto",
) -> LossHistory:
    r"""Train ``model`` and record every named loss component.

    Each step calls ``loss_fn(model, batch)``, which returns the total loss and
    its named components (see :func:`unpack_loss` for the accepted forms, which
    are checked before any gradient is computed), then ``zero_grad``, the
    backward pass (``total.backward()``, or ``backward`` or ``weighting`` when
    given), the finite check, optional clipping and ``optimizer.step()``. Per
    step the total and every component are logged without a device
    synchronisation; at the end of each epoch the sample-weighted train means
    are logged and, when ``val_loader`` is given, the validation means in
    ``eval()`` mode. The model's mode is restored when ``fit`` returns or raises.

    **Non-finite losses.** On the CPU (``check_finite="auto"``) the total is
    checked at every step, before the backward pass and ``optimizer.step()``:
    a NaN or infinite loss raises ``FloatingPointError`` at its own step with
    the parameters and their ``.grad`` untouched, for the cost of one
    ``isfinite`` read per step (negligible on the CPU). On an accelerator that
    read would stall the device at every step, so ``"auto"`` checks once per
    epoch instead, naming the first bad step; the steps from there on have been
    applied by then. ``check_finite="step"`` buys the CPU guarantee on any
    device for one synchronisation per step; ``"epoch"`` uses the cheap check
    everywhere.

    **Weighting.** With ``weighting=`` (an :class:`~multiloss_helpers.Weighting`), the
    components returned by ``loss_fn`` are the task losses, in their dict order,
    one per task. Each step calls ``weighting.backward(torch.stack(losses))``
    instead of ``total.backward()`` (the total is still logged), and each epoch
    calls ``weighting.epoch_end(means)`` with the per-task mean train losses.
    The weights applied at each step are logged as components named
    ``weight/<task>``: ``history.steps("weight/cls")`` per step,
    ``history.epochs("weight/cls")`` as epoch means, :meth:`LossHistory.weights`
    for all of them, and rows with those names in ``history.to_frame()``.
    Learnable weights (e.g. uncertainty's log-variances) must be in
    ``optimizer`` too, unless the strategy updates them itself.

    **Callbacks.** Each callback may implement ``on_epoch_start``,
    ``on_step_end`` and ``on_epoch_end``, all called as
    ``hook(epoch, history, model)`` (see :class:`Callback`); a plain function
    is an ``on_epoch_end`` hook. They replace a Python loop over
    ``fit(epochs=1)``: a weight that follows a plan is set in
    ``on_epoch_start``, a record is read in ``on_epoch_end``.

    Args:
        model: the network, already on its device.
        loss_fn: ``loss_fn(model, batch) -> total | (total, components) | result``.
        train_loader: an iterable of batches, iterated once per epoch.
        optimizer: the optimizer over the model's parameters (and over any
            learnable loss weights).
        epochs: number of passes over ``train_loader``.
        val_loader: batches to evaluate on after each epoch. Default: ``None``.
        progress: show a progress bar over epochs with the latest losses.
            Default: ``True``.
        device: where batches go. Default: ``None``, the model's device.
        scheduler: a learning-rate scheduler, stepped once per epoch.
            Default: ``None``.
        max_grad_norm: clip the global gradient norm of the model's parameters
            to this value. Default: ``None`` (no clipping).
        history: a :class:`LossHistory` to extend; epochs continue after the
            last epoch it holds, steps or epoch records alike, so a run that
            stopped in the middle of an epoch does not merge with the next one.
            Default: ``None``, a new history.
        backward: replaces ``total.backward()``: called as
            ``backward(total, components)`` after ``zero_grad``, it must leave the
            gradients in ``.grad`` (e.g. PCGrad through :func:`assign_grad`).
            Default: ``None``.
        weighting: a task-weighting strategy following the ``mlh.Weighting``
            protocol (``num_tasks``, ``backward(losses)``,
            ``epoch_end(epoch_losses)``); not together with ``backward``.
            Default: ``None``.
        callbacks: objects with ``on_epoch_start``, ``on_step_end`` or
            ``on_epoch_end`` methods, or functions (``on_epoch_end``).
            Default: ``None``.
        seed: when given, torch's global generator (dropout and any other draw
            in ``loss_fn``) is forked for the run, so the caller's random state
            is left as it was, and reseeded at the start of every epoch from
            ``(seed, epoch)``; the own generator of ``train_loader`` (a
            :class:`BatchLoader`'s, a ``DataLoader``'s or its sampler's) restarts
            from its own seed, as in a fresh loader, and is restored afterwards:
            the run is the same in every process and whatever ran before, also
            when the same loader is passed again (a run continued with
            ``history=`` therefore replays the loader's orders from its start).
            An int in ``[0, 2**64)``. Default: ``None`` (draws continue the
            global generator, which :func:`seed_everything` seeds, and the
            loader's own).
        check_finite: ``"auto"``, ``"step"`` or ``"epoch"``, as above.
            Default: ``"auto"``.

    Returns:
        The :class:`LossHistory` of the run.

    Raises:
        FloatingPointError: when a total loss becomes NaN or infinite, or, with
            ``weighting``, a task loss (the strategy backpropagates those, not the
            total); the message names the loss, the epoch and the bad step.

    Example:
        >>> import torch.nn.functional as F
        >>> from multiloss_helpers import BatchLoader, MultiHeadNet, make_multitask_data
        >>> data = make_multitask_data(128, n_features=4, seed=0)
        >>> net = MultiHeadNet(4, {"cls": 3, "reg": 1}, hidden=(16,), seed=0)
        >>> def loss_fn(model, batch):
        ...     out = model(batch["x"])
        ...     parts = {"cls": F.cross_entropy(out["cls"], batch["y_cls"]),
        ...              "reg": F.mse_loss(out["reg"], batch["y_reg"])}
        ...     return parts["cls"] + parts["reg"], parts
        >>> opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        >>> seen = []
        >>> def log_epoch(epoch, history, model):
        ...     seen.append(epoch)
        >>> history = fit(net, loss_fn, BatchLoader(data, 32), opt, epochs=3,
        ...               progress=False, callbacks=[log_epoch])
        >>> history.num_steps, history.components, seen
        (12, ['total', 'cls', 'reg'], [0, 1, 2])
    """
    run = _check_fit_args(
        model, loss_fn, optimizer, train_loader=train_loader, val_loader=val_loader,
        progress=progress, device=device, scheduler=scheduler, max_grad_norm=max_grad_norm,
        history=history, backward=backward, weighting=weighting, callbacks=callbacks,
        check_finite=check_finite,
    )  # fmt: skip
    epochs = check_int(epochs, "epochs", minimum=1)
    seed = None if seed is None else check_seed(seed, "seed")
    first = run.history.next_epoch
    bar = _progress_bar(epochs, progress)
    with _restore_mode(model), _seeded(seed, run.device) as reseed, contextlib.ExitStack() as stack:
        stack.enter_context(_seeded_loader(seed, train_loader))
        if bar is not None:
            stack.callback(bar.close)
        for epoch in range(first, first + epochs):
            reseed(epoch)
            run.call("on_epoch_start", epoch)
            _end_epoch(run, _train_epoch(run, train_loader, epoch), epoch, val_loader)
            if scheduler is not None:
                scheduler.step()
            run.call("on_epoch_end", epoch)
            _update_bar(bar, run.history, val_loader is not None)
    return run.history
