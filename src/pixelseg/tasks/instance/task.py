"""The instance task: Mask R-CNN trained, validated, tuned and evaluated by the shared engine.

Training sums torchvision's loss dict into ``"loss"``. Validation feeds the raw, overlapping,
scored masks to COCO mask AP (``mask_ap``, the primary metric that early stopping follows) and
the score-resolved instance label image to the matching AP and counting metrics. After training
the score and mask thresholds are tuned on val for counting (see
:func:`~pixelseg.tasks.instance.outputs.tune_thresholds`) and stored in the run directory
(``postprocess.json``, and ``run.json``'s ``extra["postprocess"]`` which evaluation and
prediction read).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader

from pixelseg.data.instance.dataset import detection_inputs
from pixelseg.engine.progress import progress_bar
from pixelseg.engine.task import Autocast, Job, PredictFn
from pixelseg.engine.writer import RunWriter
from pixelseg.metrics.results import EvaluationResult, InstanceResult
from pixelseg.structures import Batch, InstancePrediction, Prediction, Region
from pixelseg.tasks.instance.outputs import (
    DEFAULT_MASK_THRESHOLD,
    DEFAULT_SCORE_THRESHOLD,
    Detections,
    InstanceMetrics,
    tune_thresholds,
)


def _truths(batch: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(N, H, W)`` bool masks and ``(N,)`` labels of each image of a batch, on the CPU."""
    _, targets = detection_inputs(batch)
    return [(t["masks"].bool().cpu().numpy(), t["labels"].cpu().numpy()) for t in targets]


class InstanceTask:
    """Mask R-CNN: ``step`` returns the summed ``loss`` (training) or the ``detections`` (eval).

    Args:
        num_classes: foreground classes.
        class_names: their names (class ``k`` is ``class_names[k - 1]``).
        score_threshold: for the label images (tuned by :meth:`after_training`).
        mask_threshold: for the masks (tuned by :meth:`after_training`).
        tuned_on: the split that tuned the thresholds (None: defaults).
    """

    name = "instance"
    primary_metric = "mask_ap"
    prediction_type: type[Prediction] = InstancePrediction
    #: Detections are a set of objects, not per-pixel maps: tiles are merged at their seams
    #: (:mod:`pixelseg.inference.seams`) and test-time augmentation does not apply.
    dense_output = False
    tunes_after_training: bool = True

    def __init__(
        self,
        *,
        num_classes: int,
        class_names: Sequence[str],
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        mask_threshold: float = DEFAULT_MASK_THRESHOLD,
        tuned_on: str | None = None,
    ) -> None:
        self.tuned_on = tuned_on
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold

    def step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """One forward pass.

        Training mode: ``loss`` (the sum) and each of torchvision's five losses, detached, for
        logging. Eval mode (torchvision then returns detections, not losses): ``loss`` 0 and
        ``detections``, per image ``boxes``, ``labels``, ``scores``, ``masks`` ``(K, 1, H, W)``.
        """
        images, targets = detection_inputs(batch)
        if model.training:
            losses: dict[str, torch.Tensor] = model(images, targets)
            total = torch.stack([value.float() for value in losses.values()]).sum()
            return {"loss": total, **{key: value.detach() for key, value in losses.items()}}
        detections = model(images)
        return {"loss": torch.zeros((), device=batch.images.device), "detections": detections}

    def make_metrics(self) -> InstanceMetrics:
        """Fresh validation metrics with the current thresholds."""
        return InstanceMetrics(
            score_threshold=self.score_threshold, mask_threshold=self.mask_threshold
        )

    def update_metrics(self, metrics: Any, outputs: dict[str, Any], batch: Batch) -> None:
        """Feed one eval batch's detections and true masks to ``metrics``."""
        for output, (masks, labels), image_id in zip(
            outputs["detections"], _truths(batch), batch.ids, strict=True
        ):
            prediction = metrics.prediction(Detections.from_output(output))
            metrics.update(prediction, masks, labels, image_id)

    @torch.no_grad()
    def after_training(
        self, model: nn.Module, job: Job, writer: RunWriter, *, seconds: float | None = None
    ) -> None:
        """Tune the score and mask thresholds on val for counting, and store them in the run.

        Within ``seconds`` (when given) the tuning stops taking images once the time is spent
        (at least one image; ``postprocess.json`` says how many).

        Writes ``postprocess.json`` (the choice, the criterion and the whole grid) and the
        choice into ``run.json`` (``extra["postprocess"]``).
        """
        if "val" not in job.datasets:
            return
        device = next(model.parameters()).device
        model.eval()
        loader = DataLoader(job.datasets["val"], batch_size=1, collate_fn=job.collate)

        start, used = time.perf_counter(), 0

        def batches() -> Iterator[tuple[list[Detections], list[np.ndarray]]]:
            nonlocal used
            for batch in loader:
                if seconds is not None and used and time.perf_counter() - start > seconds:
                    return
                used += 1
                batch = batch.to(device)
                outputs = model(detection_inputs(batch)[0])
                truths = [masks for masks, _ in _truths(batch)]
                yield [Detections.from_output(o) for o in outputs], truths

        with progress_bar("tune thresholds", total=len(loader)) as advance:
            tuned = tune_thresholds(batches(), progress=advance)
        self.score_threshold = float(tuned["score_threshold"])
        self.mask_threshold = float(tuned["mask_threshold"])
        self.tuned_on = "val"
        tuned["images"], tuned["of_images"] = used, len(loader)
        job.info.extra["postprocess"] = {k: v for k, v in tuned.items() if k != "grid"}
        writer.json("postprocess.json", tuned)
        writer.json("run.json", job.info.to_dict())
        Console(highlight=False).print(
            f"thresholds tuned on val: score {self.score_threshold}, mask {self.mask_threshold} "
            f"(matching AP50 {tuned['matching_ap50']:.4f}, count MAE {tuned['count_mae']:.3f})"
        )

    @torch.no_grad()
    def predict(
        self,
        model: nn.Module,
        image: torch.Tensor,
        *,
        autocast: Autocast,
        region: Region | None = None,
    ) -> InstancePrediction:
        """Detections of one normalised ``(C, H, W)`` image and their label image.

        Args:
            region: the real part of a padded image: the image is cropped to
                ``region.size`` first (Mask R-CNN takes any size); ``region.ignore`` is unused.
        """
        if region is not None:
            image = image[:, : region.size[0], : region.size[1]]
        device = next(model.parameters()).device
        with autocast():
            (output,) = model([image.float().to(device)])
        return self.make_metrics().prediction(Detections.from_output(output))

    def dense_forward(
        self, model: nn.Module, batch: torch.Tensor, *, autocast: Autocast
    ) -> torch.Tensor:
        """Not available: Mask R-CNN's output is a set of detections (``dense_output`` False)."""
        raise TypeError("Mask R-CNN predicts detections, not per-pixel maps")

    def from_dense(self, maps: torch.Tensor, *, region: Region | None = None) -> Prediction:
        """Not available: Mask R-CNN's output is a set of detections (``dense_output`` False)."""
        raise TypeError("Mask R-CNN predicts detections, not per-pixel maps")

    def evaluate(self, predict: PredictFn, dataset: Any) -> InstanceResult:
        """Every instance metric of ``predict`` on ``dataset``, with the run's thresholds.

        Returns:
            :meth:`InstanceMetrics.compute`'s dict plus ``images_per_second``.
        """
        metrics = self.make_metrics()
        start = time.perf_counter()
        with progress_bar("evaluate", total=len(dataset)) as advance:
            for index in range(len(dataset)):
                sample = dataset[index]
                prediction = predict(sample.image)
                assert isinstance(prediction, InstancePrediction)
                truth = sample.masks.bool().numpy(), sample.labels.numpy()
                metrics.update(prediction, *truth, image_id=sample.id)
                advance()
        result = metrics.compute()
        result["thresholds_tuned_on"] = self.tuned_on
        result["images_per_second"] = len(dataset) / max(time.perf_counter() - start, 1e-9)
        return result

    def print_report(self, result: EvaluationResult, *, title: str, console: Console) -> None:
        """The instance metrics table (shared with the watershed task) and the thresholds."""
        from pixelseg.report.instance_report import print_instance_report

        result = cast(InstanceResult, result)
        print_instance_report(result, title=title, console=console)
        thresholds = result.get("thresholds")
        if thresholds:
            console.print(
                f"label images: detections scoring >= {thresholds['score']}, mask pixels >= "
                f"{thresholds['mask']}; COCO mask AP on all detections: {result['mask_ap']:.4f}"
            )

    def write_report(
        self, result: EvaluationResult, *, title: str, writer: RunWriter, folder: str
    ) -> None:
        """``report.md`` and a self-contained ``report.html`` (with the figures) under
        ``folder``."""
        from pixelseg.report.html import report_page
        from pixelseg.report.instance_report import instance_markdown

        markdown = instance_markdown(cast(InstanceResult, result), title=title)
        writer.text(f"{folder}/report.md", markdown)
        if writer.enabled:
            writer.text(f"{folder}/report.html", report_page(markdown, title, writer, folder))
