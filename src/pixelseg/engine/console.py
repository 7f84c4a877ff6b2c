"""Console output of a run: log lines (also appended to ``train.log``) and per-epoch tables."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console

from pixelseg.engine.distributed import is_main_process
from pixelseg.engine.writer import RunWriter


class RunLog:
    """Prints on rank 0 and keeps ``train.log`` in the run directory."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer
        self.console = Console(stderr=False, highlight=False)
        self.lines: list[str] = []
        path = writer.path("train.log")
        if path.exists():
            self.lines = path.read_text(encoding="utf-8").splitlines()

    def __call__(self, message: str) -> None:
        """Print and record one line."""
        if not is_main_process():
            return
        self.console.print(message, soft_wrap=True)
        self.lines.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}")
        self.writer.text("train.log", "\n".join(self.lines) + "\n")


def _fmt(value: Any, width: int) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
    else:
        text = "-" if value is None else str(value)
    return text.rjust(width)


EPOCH_COLUMNS = (
    "epoch",
    "step",
    "train_loss",
    "val_loss",
    "val_{metric}",
    "val_pixel_accuracy",
    "lr",
    "train_seconds",
)


def epoch_header(metric: str) -> str:
    """The column names of :func:`epoch_row`, printed once before the first epoch."""
    names = [
        c.format(metric=metric).replace("val_pixel_accuracy", "val_acc") for c in EPOCH_COLUMNS
    ]
    return " ".join(n.rjust(max(len(n), 8)) for n in names)


def epoch_row(record: dict[str, Any], metric: str, improved: bool) -> str:
    """One aligned line of an epoch's headline numbers; ``*`` marks a new best."""
    cells = []
    for column in EPOCH_COLUMNS:
        name = column.format(metric=metric)
        label = name.replace("val_pixel_accuracy", "val_acc")
        cells.append(_fmt(record.get(name), max(len(label), 8)))
    return " ".join(cells) + (" *" if improved else "")
