"""The training loop every chapter uses, with per-component history."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ._validation import check_float, check_int, describe
from .history import LossHistory

__all__ = ["evaluate", "fit", "predict", "unpack_loss"]

Batch = Any
LossFn = Callable[[nn.Module, Batch], Any]


def unpack_loss(result: Any) -> tuple[Tensor, dict[str, Tensor]]:
    """Read a loss function's result as ``(total, components)``.

    Three forms are accepted, so that a plain function, a ``(total, dict)``
    tuple and a combiner's result object all work with :func:`fit`:

    - a scalar tensor: the total, with no named components;
    - a pair ``(total, {name: scalar tensor})``;
    - an object with ``.total`` and ``.components`` attributes.

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
    if not isinstance(total, Tensor) or total.numel() != 1:
        raise TypeError(f"the total loss must be a scalar tensor, got {describe(total)}")
    if not isinstance(components, Mapping):
        raise TypeError(
            f"the loss components must be a mapping of name to loss, got {describe(components)}"
        )
    if "total" in components:
        raise ValueError(
            "a loss component may not be called 'total': that name is kept for the sum"
        )
    return total.reshape(()), dict(components)


def _batch_size(batch: Batch) -> int:
    """Number of samples in a batch: the first dimension of its first tensor."""
    if isinstance(batch, Tensor):
        return len(batch) if batch.dim() else 1
    values: Iterable[Any] = batch.values() if isinstance(batch, Mapping) else batch
    for value in values:
        if isinstance(value, Tensor) and value.dim() > 0:
            return len(value)
    raise TypeError(f"a batch must contain at least one tensor, got {describe(batch)}")


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


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {describe(model)}")


def _check_loader(loader: Any, name: str) -> None:
    if isinstance(loader, (Tensor, Mapping)) or not isinstance(loader, Iterable):
        raise TypeError(
            f"`{name}` must be an iterable of batches (a BatchLoader or a DataLoader), "
            f"got {describe(loader)}"
        )


class _WeightedMeans:
    """Running sample-weighted means of scalar components, kept on the device."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0

    def add(self, components: Mapping[str, Tensor], n: int) -> None:
        for name, value in components.items():
            value = value.detach().reshape(()).float() * n
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.count += n

    def means(self, what: str) -> dict[str, Tensor]:
        if self.count == 0:
            raise ValueError(f"{what} yielded no batch")
        return {name: value / self.count for name, value in self.sums.items()}


def _mean_components(
    model: nn.Module, loss_fn: LossFn, loader: Iterable[Batch], device: torch.device
) -> dict[str, Tensor]:
    """Sample-weighted mean of every component over ``loader`` (no gradients)."""
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
    """The mean of every loss component over a dataset, in evaluation mode.

    Means are weighted by batch size, so a smaller last batch counts for what
    it holds. The model is put in ``eval()`` mode for the pass and restored to
    the mode it was in.

    Args:
        model: the network.
        loss_fn: ``loss_fn(model, batch)``, as for :func:`fit`.
        loader: an iterable of batches.
        device: where batches go; defaults to the model's device.

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
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    try:
        means = _mean_components(model, loss_fn, loader, device)
    finally:
        model.train(was_training)
    values = torch.stack(list(means.values())).tolist()
    return dict(zip(means, values))


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[Batch],
    *,
    input_key: str = "x",
    device: torch.device | str | None = None,
) -> Any:
    """Run the model over a dataset in evaluation mode and concatenate its outputs.

    Args:
        model: the network; its output may be a tensor or a mapping of tensors.
        loader: an iterable of batches; a batch that is a mapping is fed as
            ``batch[input_key]``, a tuple or list by its first element.
        input_key: the input's key in mapping batches.
        device: where batches go; defaults to the model's device.

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
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    chunks: list[Any] = []
    try:
        for batch in loader:
            if isinstance(batch, Mapping):
                if input_key not in batch:
                    raise ValueError(
                        f"`input_key` {input_key!r} is not a key of the batch {sorted(batch)}"
                    )
                inputs = batch[input_key]
            elif isinstance(batch, (list, tuple)):
                inputs = batch[0]
            else:
                inputs = batch
            chunks.append(model(_to_device(inputs, device)))
    finally:
        model.train(was_training)
    if not chunks:
        raise ValueError("the loader yielded no batch")
    if isinstance(chunks[0], Mapping):
        return {k: torch.cat([c[k] for c in chunks]).cpu() for k in chunks[0]}
    return torch.cat(chunks).cpu()


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="epochs", unit="epoch", leave=True)


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
    backward: Callable[[Tensor, dict[str, Tensor]], None] | None = None,
) -> LossHistory:
    """Train ``model`` and record every named loss component.

    Each step calls ``loss_fn(model, batch)``, which returns the total loss and
    its named components (see :func:`unpack_loss` for the accepted forms), then
    ``zero_grad``, ``total.backward()`` and ``optimizer.step()``. Per step, the
    total and every component are logged without a device synchronisation; at
    the end of each epoch the sample-weighted train means are logged and, when
    ``val_loader`` is given, the validation means in ``eval()`` mode.

    Args:
        model: the network, already on its device.
        loss_fn: ``loss_fn(model, batch) -> total | (total, components) | result``.
        train_loader: an iterable of batches, iterated once per epoch.
        optimizer: the optimizer over the model's parameters (and over any
            learnable loss weights).
        epochs: number of passes over ``train_loader``.
        val_loader: batches to evaluate on after each epoch.
        progress: show a progress bar over epochs with the latest losses.
        device: where batches go; defaults to the model's device.
        scheduler: an optional learning-rate scheduler, stepped once per epoch.
        max_grad_norm: clip the global gradient norm to this value when given.
        history: an existing :class:`LossHistory` to extend (epochs continue
            from its last one); a new one is made by default.
        backward: replaces ``total.backward()``: called as
            ``backward(total, components)`` after ``zero_grad``, it must leave the
            gradients in ``.grad`` (e.g. PCGrad: per-task gradients combined and
            written back with :func:`assign_grad`).

    Returns:
        The :class:`LossHistory` of the run.

    Raises:
        FloatingPointError: when a total loss becomes NaN or infinite; the
            message gives the epoch and the first bad step.

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
        >>> history = fit(net, loss_fn, BatchLoader(data, 32), opt, epochs=3, progress=False)
        >>> history.num_steps, history.components
        (12, ['total', 'cls', 'reg'])
    """
    _check_model(model)
    if not callable(loss_fn):
        raise TypeError(
            f"`loss_fn` must be callable as loss_fn(model, batch), got {describe(loss_fn)}"
        )
    _check_loader(train_loader, "train_loader")
    if val_loader is not None:
        _check_loader(val_loader, "val_loader")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {describe(optimizer)}")
    epochs = check_int(epochs, "epochs", minimum=1)
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be a bool, got {describe(progress)}")
    if max_grad_norm is not None:
        max_grad_norm = check_float(max_grad_norm, "max_grad_norm", minimum=0.0, open_minimum=True)
    if backward is not None and not callable(backward):
        raise TypeError(
            f"`backward` must be callable as backward(total, components), got {describe(backward)}"
        )
    if history is None:
        history = LossHistory()
    elif not isinstance(history, LossHistory):
        raise TypeError(f"`history` must be a LossHistory, got {describe(history)}")
    device = torch.device(device) if device is not None else _model_device(model)
    first_epoch = history.num_epochs

    bar = _progress_bar(epochs, progress)
    try:
        for epoch in range(first_epoch, first_epoch + epochs):
            model.train()
            totals: list[Tensor] = []
            epoch_means = _WeightedMeans()
            for batch in train_loader:
                batch = _to_device(batch, device)
                n = _batch_size(batch)
                total, components = unpack_loss(loss_fn(model, batch))
                if not total.requires_grad:
                    raise ValueError(
                        "the total loss returned by `loss_fn` does not require grad, so "
                        "backward() cannot train anything: was it built with torch.tensor(...) "
                        "or .item(), or inside torch.no_grad()? Combine losses with + or "
                        "torch.stack(...).sum() to keep the graph"
                    )
                optimizer.zero_grad(set_to_none=True)
                if backward is None:
                    total.backward()
                else:
                    backward(total, components)
                if max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                optimizer.step()
                record = {"total": total, **components}
                history.log_step(record, epoch=epoch)
                totals.append(total.detach())
                epoch_means.add(record, n)
            train_means = epoch_means.means("`train_loader`")
            stacked = torch.stack(totals)
            finite = torch.isfinite(stacked)
            if not bool(finite.all()):
                bad = int((~finite).nonzero()[0])
                raise FloatingPointError(
                    f"the total loss became {float(stacked[bad])} at step {bad} of epoch {epoch}: "
                    "lower the learning rate, clip gradients (`max_grad_norm`) or check the loss "
                    "for log(0) and division by zero"
                )
            history.log_epoch(train_means, epoch=epoch, split="train")
            if val_loader is not None:
                was_training = model.training
                model.eval()
                with torch.no_grad():
                    val = _mean_components(model, loss_fn, val_loader, device)
                model.train(was_training)
                history.log_epoch(val, epoch=epoch, split="val")
            if scheduler is not None:
                scheduler.step()
            if bar is not None:
                postfix = {"train": f"{history.last('total'):.4g}"}
                if val_loader is not None:
                    postfix["val"] = f"{history.last('total', split='val'):.4g}"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return history
