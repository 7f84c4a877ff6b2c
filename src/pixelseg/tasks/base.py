"""The task contract: one loop trains every job because each job is a task object."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from pixelseg.structures import Batch


class Metric(Protocol):
    """Accumulator protocol shared by every metric (``reset/update/compute``)."""

    def reset(self) -> None:
        """Forget everything accumulated."""

    def compute(self) -> dict[str, Any]:
        """The metrics over everything seen since the last reset."""


class Task(Protocol):
    """What the engine needs from a job (semantic, instance, watershed).

    ``step`` returns a dict with ``"loss"`` (a scalar tensor) and whatever ``update_metrics``
    needs; ``primary_metric`` names the key early stopping and the best checkpoint follow.
    """

    name: str
    primary_metric: str

    def step(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Forward one batch and compute the loss."""

    def make_metrics(self) -> Metric:
        """A fresh metric accumulator for validation."""

    def update_metrics(
        self, metrics: Metric, outputs: dict[str, torch.Tensor], batch: Batch
    ) -> None:
        """Feed one validation batch's outputs to the accumulator."""
