"""mlh.BatchLoader (slicing a permuted tensor) vs DataLoader(TensorDataset).

Run with `make bench`. Prints the median time of one shuffled epoch for each loader,
measured side by side in one run, and the ratio to BatchLoader: first iterating
alone, then one epoch of training the book's small two-head model, where the
loader is only part of the cost.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from _report import report
from torch.utils.data import DataLoader, TensorDataset

import multiloss_helpers as mlh

torch.set_num_threads(2)


def _train_epoch(loader, model, optimizer):
    def run():
        for batch in loader:
            x, y_reg, y_cls = batch.values() if isinstance(batch, dict) else batch
            out = model(x)
            loss = F.cross_entropy(out["cls"], y_cls) + F.mse_loss(out["reg"], y_reg)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def main() -> None:
    data = mlh.make_multitask_data(20_000, n_features=32, seed=0)
    for batch_size in (64, 256):
        ours = mlh.BatchLoader(data, batch_size, seed=0)
        theirs = DataLoader(
            TensorDataset(data["x"], data["y_reg"], data["y_cls"]),
            batch_size=batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(0),
        )

        def epoch(loader):
            return lambda: sum(1 for _ in loader)

        medians = mlh.compare_times(
            {"mlh.BatchLoader": epoch(ours), "DataLoader(TensorDataset)": epoch(theirs)},
            repeats=5,
        )
        title = f"one shuffled epoch, 20000 samples, batch size {batch_size}"
        report(title, medians, "mlh.BatchLoader")

        model = mlh.MultiHeadNet(32, {"cls": 3, "reg": 1}, hidden=(64, 64), seed=0)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
        medians = mlh.compare_times(
            {
                "mlh.BatchLoader": _train_epoch(ours, model, optimizer),
                "DataLoader(TensorDataset)": _train_epoch(theirs, model, optimizer),
            },
            repeats=3,
        )
        title = f"one training epoch (2x64 MLP, two heads), batch size {batch_size}"
        report(title, medians, "mlh.BatchLoader")


if __name__ == "__main__":
    main()
