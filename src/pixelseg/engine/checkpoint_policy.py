"""When checkpoints are written: ``last`` at epoch ends and every few minutes, ``best`` on gain.

``last`` holds everything a resume needs (weights, optimizer, RNG states, loop state); ``best``
only the weights of the best validation so far. Both go through the rank-aware writer, so only
rank 0 writes, and every write is atomic.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import save_checkpoint
from pixelseg.engine.clock import Clock
from pixelseg.engine.writer import RunWriter


class CheckpointPolicy:
    """Writes ``last`` when :meth:`due` (every ``every_s`` seconds) or when asked, and ``best``.

    Args:
        writer: the run's writer (a no-op off rank 0).
        model: the model whose weights are saved.
        optimizer: its optimizer (saved in ``last``).
        clock: the run's clock (``state.elapsed`` is set from it at each save).
        every_s: seconds between time-based ``last`` checkpoints.
        scaler: fp16's gradient scaler (saved in ``last``), or ``None``.
    """

    def __init__(
        self,
        writer: RunWriter,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        clock: Clock,
        every_s: float,
        scaler: torch.amp.GradScaler | None = None,
    ) -> None:
        self.writer = writer
        self.scaler = scaler
        self.model = model
        self.optimizer = optimizer
        self.clock = clock
        self.every_s = every_s
        self._last_save = clock.now()

    def due(self) -> bool:
        """True when ``every_s`` seconds passed since the last ``last`` checkpoint."""
        return self.clock.now() - self._last_save >= self.every_s

    def save_last(self, state: Any) -> None:
        """Write the resumable ``last`` checkpoint of ``state`` (a dataclass) now."""
        state.elapsed = self.clock.elapsed()
        if self.writer.enabled:
            save_checkpoint(
                self.writer.path(rd.LAST),
                self.model,
                optimizer=self.optimizer,
                state=dataclasses.asdict(state),
                with_rng=True,
                scaler=self.scaler,
            )
        self._last_save = self.clock.now()

    def save_best(self, state: Any) -> None:
        """Write the ``best`` checkpoint (weights and loop state, no optimizer)."""
        if self.writer.enabled:
            save_checkpoint(self.writer.path(rd.BEST), self.model, state=dataclasses.asdict(state))
