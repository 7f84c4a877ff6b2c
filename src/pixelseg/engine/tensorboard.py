"""Training curves as TensorBoard event files (``train.tensorboard = true``).

Every record of ``metrics.jsonl`` (train loss, learning rate, the validation metrics) becomes a
scalar at its optimizer step, under ``RUN_DIR/tensorboard``: ``tensorboard --logdir runs``
shows every run side by side. ``metrics.jsonl`` stays the record pixelseg reads itself.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pixelseg.errors import ConfigError

#: Record keys that are positions, not curves.
_NOT_CURVES = ("step", "epoch", "event")


class TensorBoardLog:
    """Writes records as scalars into ``folder``.

    Raises:
        ConfigError: the ``tensorboard`` package is not installed.
    """

    def __init__(self, folder: Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise ConfigError(
                "train.tensorboard = true needs the tensorboard package (pip install tensorboard)"
            ) from exc
        self.writer = SummaryWriter(str(folder))

    def add(self, record: dict[str, Any]) -> None:
        """Each finite number of ``record`` as a scalar at ``record["step"]`` (``val_miou`` is
        shown as ``val/miou``)."""
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key in _NOT_CURVES or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                name = "val/" + key[4:] if key.startswith("val_") else "train/" + key
                self.writer.add_scalar(name, float(value), step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
