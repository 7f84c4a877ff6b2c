"""The semantic segmentation task: logits per pixel, a loss, confusion-matrix metrics."""

from __future__ import annotations

import time
from typing import Any, cast

import torch
from rich.console import Console
from torch import nn

from pixelseg.engine.padding import class_argmax, padded_probabilities
from pixelseg.engine.progress import progress_bar
from pixelseg.engine.task import Autocast, Job, PredictFn
from pixelseg.engine.writer import RunWriter
from pixelseg.metrics.confusion import ConfusionMatrix
from pixelseg.metrics.results import EvaluationResult, SemanticResult
from pixelseg.structures import Batch, Prediction, Region, SemanticPrediction


class SemanticMetrics:
    """Confusion matrix (mIoU, Dice, accuracies) plus AUC-ROC for two-class tasks."""

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int,
        class_names: list[str],
        keep_images: bool = False,
    ) -> None:
        self.confusion = ConfusionMatrix(
            num_classes, ignore_index=ignore_index, class_names=class_names, keep_images=keep_images
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

    def sync(self, indices: list[int]) -> None:
        """Sum the counts over the DDP processes (``indices``: unused, counts have no order)."""
        self.confusion.sync()
        if self.auc is not None:
            self.auc.sync()

    def compute(self) -> SemanticResult:
        """All metrics as one dict (``auc_roc`` for two-class tasks)."""
        result = SemanticResult(**self.confusion.compute())
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
    prediction_type: type[Prediction] = SemanticPrediction
    #: The prediction is the argmax of per-pixel probabilities that tiles can blend.
    dense_output = True
    tunes_after_training: bool = False

    def __init__(
        self, loss_fn: nn.Module, *, num_classes: int, ignore_index: int, class_names: list[str]
    ) -> None:
        self.loss_fn = loss_fn
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = class_names

    def step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """Forward ``batch.images`` and compute the loss against ``batch.masks``."""
        logits = model(batch.images)
        loss = self.loss_fn(logits.float(), batch.masks)
        return {"loss": loss, "logits": logits}

    def make_metrics(self) -> SemanticMetrics:
        """Fresh validation metrics."""
        return SemanticMetrics(
            self.num_classes, ignore_index=self.ignore_index, class_names=self.class_names
        )

    def update_metrics(self, metrics: Any, outputs: dict[str, Any], batch: Batch) -> None:
        """Feed logits and masks to the accumulator."""
        metrics.update(outputs["logits"].detach(), batch.masks)

    def after_training(
        self, model: nn.Module, job: Job, writer: RunWriter, *, seconds: float | None = None
    ) -> None:
        """Nothing to tune: the argmax of the logits is the prediction."""

    @torch.no_grad()
    def predict(
        self,
        model: nn.Module,
        image: torch.Tensor,
        *,
        autocast: Autocast,
        region: Region | None = None,
    ) -> SemanticPrediction:
        """Class probabilities and label map of one normalised ``(C, H, W)`` image.

        The image is padded as :func:`~pixelseg.engine.padding.pad_batch` says and the
        result cropped back (to ``region.size`` when given; ``region.ignore`` is unused: every
        pixel gets a class).
        """
        height, width = region.size if region is not None else tuple(image.shape[-2:])
        probs = self.dense_forward(model, image[None], autocast=autocast)
        return self.from_dense(probs[0, :, :height, :width], region=region)

    def dense_forward(
        self, model: nn.Module, batch: torch.Tensor, *, autocast: Autocast
    ) -> torch.Tensor:
        """``(B, K, h, w)`` class probabilities of a normalised batch (on the CPU)."""
        return padded_probabilities(model, batch, autocast)

    def from_dense(self, maps: torch.Tensor, *, region: Region | None = None) -> SemanticPrediction:
        """The prediction of one image's ``(K, H, W)`` (blended) probabilities: their argmax
        (``region`` is unused: every pixel gets a class)."""
        return SemanticPrediction(probs=maps, label_map=class_argmax(maps))

    def evaluate(self, predict: PredictFn, dataset: Any) -> SemanticResult:
        """Confusion-matrix metrics, AUC (two classes), boundary F1 and the merge rate of
        countable classes (:mod:`pixelseg.metrics.merge_rate`) over ``dataset``.

        Padding, void and invalid pixels carry ``ignore_index`` in the masks and never count.
        """
        from pixelseg.metrics.bootstrap import semantic_intervals
        from pixelseg.metrics.boundary import BoundaryF1
        from pixelseg.metrics.confusion import image_mious
        from pixelseg.metrics.merge_rate import MergeRate

        metrics = SemanticMetrics(
            self.num_classes,
            ignore_index=self.ignore_index,
            class_names=self.class_names,
            keep_images=True,
        )
        boundary = BoundaryF1(
            self.num_classes, ignore_index=self.ignore_index, class_names=self.class_names
        )
        merges = MergeRate(self.class_names, ignore_index=self.ignore_index)
        start = time.perf_counter()
        ids: list[str] = []
        with progress_bar("evaluate", total=len(dataset)) as advance:
            for index in range(len(dataset)):
                sample = dataset[index]
                ids.append(sample.id)
                prediction = predict(sample.image)
                assert isinstance(prediction, SemanticPrediction)
                target = sample.mask[None]
                metrics.update(prediction.probs[None].log(), target)
                boundary.update(prediction.label_map[None], target)
                merges.update(prediction.label_map.numpy(), sample.mask.numpy())
                advance()
        result = metrics.compute()
        result.update(boundary.compute())  # type: ignore[typeddict-item]
        result["num_images"] = len(dataset)
        result["merge_rate"] = merges.compute()
        matrices = metrics.confusion.image_matrices()
        result["intervals"] = semantic_intervals(matrices, self.class_names)
        result["per_image_miou"] = [
            {"id": image_id, "miou": float(value)}
            for image_id, value in zip(ids, image_mious(matrices))
        ]
        result["images_per_second"] = len(dataset) / max(time.perf_counter() - start, 1e-9)
        return result

    def print_report(self, result: EvaluationResult, *, title: str, console: Console) -> None:
        """Per-class table, headline lines and the honesty warnings."""
        from pixelseg.report.tables import print_semantic_report

        print_semantic_report(cast(SemanticResult, result), title=title, console=console)

    def write_report(
        self, result: EvaluationResult, *, title: str, writer: RunWriter, folder: str
    ) -> None:
        """``report.md``, ``confusion.png`` and a self-contained ``report.html``."""
        from pixelseg.report.evaluation_figures import FIGURES
        from pixelseg.report.figures import save_confusion_matrix
        from pixelseg.report.html import semantic_html
        from pixelseg.report.tables import semantic_markdown

        result = cast(SemanticResult, result)
        writer.text(f"{folder}/report.md", semantic_markdown(result, title=title))
        if writer.enabled:
            confusion = save_confusion_matrix(
                writer.path(f"{folder}/confusion.png"),
                result["confusion_matrix"],
                list(result["per_class_iou"]),
            )
            shown = [writer.path(f"{folder}/{name}") for name in FIGURES]
            page = semantic_html(result, title=title, images=[*shown[:2], confusion, *shown[2:]])
            writer.text(f"{folder}/report.html", page)
