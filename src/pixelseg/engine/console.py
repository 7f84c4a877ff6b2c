"""Console output of a run: log lines (also appended to ``train.log``) and per-epoch tables."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.table import Table

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
        self.console.print(message)
        self.lines.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}")
        self.writer.text("train.log", "\n".join(self.lines) + "\n")

    def table(self, table: Table) -> None:
        """Print a table (not recorded: ``metrics.jsonl`` has the numbers)."""
        if is_main_process():
            self.console.print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def epoch_row(record: dict[str, Any], metric: str, improved: bool) -> Table:
    """A one-row table of an epoch's headline numbers."""
    columns = [
        "epoch",
        "step",
        "train_loss",
        "val_loss",
        f"val_{metric}",
        "val_pixel_accuracy",
        "lr",
        "train_seconds",
    ]
    table = Table(show_edge=False, pad_edge=False)
    for name in columns:
        table.add_column(name.replace("val_", "val "), justify="right")
    row = [_fmt(record.get(c)) for c in columns]
    if improved:
        row[4] = f"[green]{row[4]} *[/green]"
    table.add_row(*row)
    return table
