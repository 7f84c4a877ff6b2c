"""The semantic segmentation task: logits per pixel, a loss, confusion-matrix metrics."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pixelseg.metrics.confusion import ConfusionMatrix
from pixelseg.structures import Batch


class SemanticMetrics:
    """Confusion matrix (mIoU, Dice, accuracies) plus AUC-ROC for two-class tasks."""

    def __init__(self, num_classes: int, *, ignore_index: int, class_names: list[str]) -> None:
        self.confusion = ConfusionMatrix(
            num_classes, ignore_index=ignore_index, class_names=class_names
        )
        self.auc: Any = None
        if num_classes == 2:
            from pixelseg.metrics.binary import BinaryAUROC

            self.auc = BinaryAUROC(ignore_index=ignore_index)

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.confusion.reset()
        if self.auc is not None:
            self.auc.reset()

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Accumulate ``logits`` ``(N, C, H, W)`` against ``target`` ``(N, H, W)``."""
        self.confusion.update(logits.argmax(1), target)
        if self.auc is not None:
            self.auc.update(logits.float().softmax(1)[:, 1], target)

    def compute(self) -> dict[str, Any]:
        """All metrics as one dict (``auc_roc`` for two-class tasks)."""
        result = dict(self.confusion.compute())
        if self.auc is not None:
            result["auc_roc"] = self.auc.compute()["auc_roc"]
        return result


class SemanticTask:
    """Per-pixel classification: ``step`` returns ``loss`` and ``logits`` ``(N, C, H, W)``.

    Args:
        loss_fn: maps ``(logits, target)`` to a scalar.
        num_classes: number of real classes.
        ignore_index: label of void/padding pixels.
        class_names: names for reports.
    """

    name = "semantic"
    primary_metric = "miou"

    def __init__(
        self, loss_fn: nn.Module, *, num_classes: int, ignore_index: int, class_names: list[str]
    ) -> None:
        self.loss_fn = loss_fn
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = class_names

    def step(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Forward ``batch.images`` and compute the loss against ``batch.masks``."""
        logits = model(batch.images)
        loss = self.loss_fn(logits.float(), batch.masks)
        return {"loss": loss, "logits": logits}

    def make_metrics(self) -> SemanticMetrics:
        """Fresh validation metrics."""
        return SemanticMetrics(
            self.num_classes, ignore_index=self.ignore_index, class_names=self.class_names
        )

    def update_metrics(self, metrics: Any, outputs: dict[str, torch.Tensor], batch: Batch) -> None:
        """Feed logits and masks to the accumulator."""
        metrics.update(outputs["logits"].detach(), batch.masks)
