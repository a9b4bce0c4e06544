"""The training log: MODEL/train_log.csv always, TensorBoard too when it is installed."""

from __future__ import annotations

import csv
from pathlib import Path

LOG_COLUMNS = ["step", "crops_seen", "loss", "reconstruction_mse", "commitment", "batch_usage", "batch_perplexity"]


class TrainLog:
    def __init__(self, model_dir: Path, start_step: int):
        self.path = model_dir / "train_log.csv"
        self._truncate(start_step)
        self.writer = _tensorboard(model_dir)

    def _truncate(self, step: int) -> None:
        """A resumed run rewrites the log from its checkpoint on, so the CSV has no duplicate steps."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = []
        if step > 0 and self.path.is_file():
            with open(self.path, newline="") as handle:
                rows = [r for r in csv.reader(handle)][1:]
            rows = [r for r in rows if int(r[0]) <= step]
        with open(self.path, "w", newline="") as handle:
            csv.writer(handle).writerows([LOG_COLUMNS, *rows])

    def append(self, row: list) -> None:
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow(row)
        if self.writer is not None:
            for name, value in zip(LOG_COLUMNS[1:], row[1:]):
                self.writer.add_scalar(name, value, row[0])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _tensorboard(model_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional: the CSV log always exists
        return None
    return SummaryWriter(str(model_dir / "tensorboard"))
