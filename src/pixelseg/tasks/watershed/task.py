"""Semantic → instance: a semantic net learns interiors and boundaries, a watershed splits them.

Any registered semantic model is trained on targets derived from instance labels in the data
pipeline (:mod:`pixelseg.tasks.watershed.data`): background / interior / boundary with the U-Net
border weight map as per-pixel cross-entropy weights (plus Dice), optionally with one more output
channel regressing the distance to the boundary. After training the post-processing thresholds
are tuned on the val split and stored in the run directory (``postprocess.json`` and
``run.json``); evaluation reports instance metrics. ``[watershed] targets = "two_class"`` with
``postprocess = "connected_components"`` is the naive baseline, where touching objects merge.
"""

from __future__ import annotations

import time
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from pixelseg.config import WatershedConfig
from pixelseg.engine.progress import progress_bar
from pixelseg.engine.task import Autocast, Job, PredictFn
from pixelseg.engine.writer import RunWriter
from pixelseg.losses.dice import dice_loss
from pixelseg.metrics.results import EvaluationResult, InstanceResult
from pixelseg.postprocess.masks import instance_prediction
from pixelseg.postprocess.tuning import tune_postprocess
from pixelseg.postprocess.watershed import (
    apply_postprocess,
    default_postprocess,
    object_scores,
    params_summary,
    suppress_ignored,
)
from pixelseg.structures import Batch, InstancePrediction, Prediction, Region
from pixelseg.tasks.watershed.data import IGNORE_INDEX, THREE_CLASS_NAMES, TWO_CLASS_NAMES
from pixelseg.tasks.watershed.evaluate import (
    WatershedMetrics,
    evaluate_watershed,
    markdown_report,
    print_report,
)
from pixelseg.tasks.watershed.maps import dense_maps, predict_maps, split_outputs


class WatershedTask:
    """Train a semantic net on watershed targets; ``step`` returns ``loss`` and ``outputs``.

    The loss is the per-pixel cross-entropy weighted by the batch's weight map (a weighted mean),
    plus ``dice_weight`` times the multiclass Dice loss (``loss_name = "dice_ce"``), plus
    ``distance_weight`` times the L1 / MSE distance loss on valid pixels with a distance head.

    Args:
        settings: the ``[watershed]`` section.
        loss_name: ``"ce"`` or ``"dice_ce"``.
        ce_weight: weight of the cross-entropy term.
        dice_weight: weight of the Dice term.
        postprocess: post-processing settings used for validation and evaluation.
        postprocess_tuned_on: the split that tuned ``postprocess`` (None: untuned defaults).
    """

    name = "watershed"
    primary_metric = "matching_ap50"
    prediction_type: type[Prediction] = InstancePrediction
    #: Objects come from per-pixel maps: tiles blend them, so no object is cut at a seam.
    dense_output = True

    @property
    def tunes_after_training(self) -> bool:
        """True when ``[watershed] tune`` asks for threshold tuning on val."""
        return self.settings.tune

    def __init__(
        self,
        settings: WatershedConfig,
        *,
        loss_name: str = "dice_ce",
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        postprocess: dict[str, Any] | None = None,
        postprocess_tuned_on: str | None = None,
    ) -> None:
        self.settings = settings
        self.class_names = (
            THREE_CLASS_NAMES if settings.targets == "three_class" else TWO_CLASS_NAMES
        )
        self.num_classes = len(self.class_names)
        self.loss_name = loss_name
        self.ce_weight = ce_weight
        self.dice_weight = dice_weight
        self.postprocess = postprocess or default_postprocess(settings)
        self.postprocess_tuned_on = postprocess_tuned_on

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The training loss of ``outputs`` ``(N, K(+1), H, W)`` against a collated batch."""
        logits, distance = split_outputs(
            outputs.float(), num_classes=self.num_classes, distance_head=self.settings.distance_head
        )
        targets = batch.targets or []
        weights = torch.stack([t["weight_map"] for t in targets]).to(logits.dtype)
        valid = batch.masks != IGNORE_INDEX
        labels = torch.where(valid, batch.masks, torch.zeros_like(batch.masks))
        per_pixel = F.cross_entropy(logits, labels, reduction="none")
        loss = self.ce_weight * (per_pixel * weights).sum() / weights.sum().clamp_min(1e-6)
        if self.loss_name == "dice_ce":
            loss = loss + self.dice_weight * dice_loss(
                logits, batch.masks, ignore_index=IGNORE_INDEX
            )
        if distance is not None:
            difference = distance - torch.stack([t["distance"] for t in targets])
            error = difference.abs() if self.settings.distance_loss == "l1" else difference**2
            mean_error = (error * valid).sum() / valid.sum().clamp_min(1)
            loss = loss + self.settings.distance_weight * mean_error
        return loss

    def step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """Forward ``batch.images`` and compute the loss."""
        outputs = model(batch.images)
        return {"loss": self.loss(outputs, batch), "outputs": outputs}

    def make_metrics(self) -> WatershedMetrics:
        """Fresh validation metrics (untuned post-processing)."""
        return WatershedMetrics(
            self.class_names,
            postprocess=default_postprocess(self.settings),
            distance_head=self.settings.distance_head,
        )

    def update_metrics(self, metrics: Any, outputs: dict[str, Any], batch: Batch) -> None:
        """Feed one validation batch to the accumulator."""
        metrics.update(outputs["outputs"].detach(), batch)

    def after_training(
        self, model: nn.Module, job: Job, writer: RunWriter, *, seconds: float | None = None
    ) -> None:
        """Tune the post-processing thresholds on val with the best weights; store them.

        Within ``seconds`` (when given) the tuning uses the first val images whose maps and
        grid search fit: maps are predicted for at most 30 % of the time, the grid's cost is
        timed on the first image, and as many images are kept as 80 % of the rest allows (at least
        one; ``postprocess.json`` says how many). Writes ``postprocess.json`` (the chosen
        settings and the whole tuning table) and the chosen settings into ``run.json``
        (``extra["postprocess"]``), which evaluation and prediction read.
        """
        model.eval()
        start = time.perf_counter()
        prob_maps: list[np.ndarray] = []
        truths: list[np.ndarray] = []
        distances: list[np.ndarray] = []
        dataset = job.datasets["val"] if self.settings.tune else []
        with progress_bar("tune post-processing", total=len(dataset)) as advance:
            for index in range(len(dataset)):
                if (
                    seconds is not None
                    and prob_maps
                    and time.perf_counter() - start > 0.4 * seconds
                ):
                    break
                sample = dataset[index]
                height, width = sample.meta.get("orig_size", sample.image.shape[-2:])
                probs, distance = predict_maps(
                    model,
                    sample.image,
                    num_classes=self.num_classes,
                    distance_head=self.settings.distance_head,
                    size=(height, width),
                )
                ignored = sample.class_map[:height, :width] == IGNORE_INDEX
                prob_maps.append(suppress_ignored(probs, ignored.numpy()))
                truths.append(sample.instances[:height, :width].numpy())
                if distance is not None:
                    distances.append(distance)
                advance()
        used = len(prob_maps)
        if self.settings.tune:
            if seconds is not None and used > 1:
                grid_start = time.perf_counter()
                tune_postprocess(prob_maps[:1], truths[:1], self.settings,
                                 distances=distances[:1] or None)  # fmt: skip
                per_image = max(time.perf_counter() - grid_start, 1e-6)
                left = seconds - (time.perf_counter() - start)
                used = max(1, min(used, int(0.8 * left / per_image)))
            chosen, table = tune_postprocess(
                prob_maps[:used], truths[:used], self.settings, distances=distances[:used] or None
            )
        else:
            chosen, table = default_postprocess(self.settings), []
        self.postprocess = chosen
        self.postprocess_tuned_on = "val" if self.settings.tune else None
        job.info.extra["postprocess"] = chosen
        job.info.extra["postprocess_tuned_on"] = "val" if self.settings.tune else None
        writer.json(
            "postprocess.json",
            {
                "chosen": chosen,
                "tuned_on": job.info.extra["postprocess_tuned_on"],
                "score": "matching_ap50_pooled",
                "images": used,
                "of_images": len(job.datasets["val"]),
                "table": table,
            },
        )
        writer.json("run.json", job.info.to_dict())
        if writer.enabled:
            Console(highlight=False).print(
                f"post-processing{' tuned on val' if self.settings.tune else ''}: "
                f"{params_summary(chosen)}",
                soft_wrap=True,
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
        """Objects of one normalised ``(C, H, W)`` image after the run's post-processing.

        Args:
            region: the real part of a padded image: maps are cropped to ``region.size``
                before post-processing, and ``region.ignore`` pixels hold no object.
        """
        height, width = region.size if region is not None else tuple(image.shape[-2:])
        maps = self.dense_forward(model, image[None], autocast=autocast)
        return self.from_dense(maps[0, :, :height, :width], region=region)

    def dense_forward(
        self, model: nn.Module, batch: torch.Tensor, *, autocast: Autocast
    ) -> torch.Tensor:
        """``(B, K[+1], h, w)`` class probabilities and distance of a normalised batch."""
        return dense_maps(
            model,
            batch,
            num_classes=self.num_classes,
            distance_head=self.settings.distance_head,
            autocast=autocast,
        )

    def from_dense(self, maps: torch.Tensor, *, region: Region | None = None) -> InstancePrediction:
        """Objects of one image's ``(K[+1], H, W)`` (blended) maps after the post-processing;
        ``region.ignore`` pixels hold no object."""
        arrays = maps.float().numpy()
        probs = arrays[: self.num_classes]
        distance = arrays[self.num_classes] if self.settings.distance_head else None
        if region is not None and region.ignore is not None:
            probs = suppress_ignored(probs, region.ignore)
        label_image = apply_postprocess(probs, distance, self.postprocess)
        return instance_prediction(
            label_image, object_scores(probs, label_image), class_probs=probs
        )

    def evaluate(self, predict: PredictFn, dataset: Any) -> InstanceResult:
        """Instance metrics after the run's post-processing, and the class map's mIoU."""
        return evaluate_watershed(self, predict, dataset)

    def print_report(self, result: EvaluationResult, *, title: str, console: Console) -> None:
        """The instance metrics, the post-processing used and the class-map mIoU."""
        print_report(cast(InstanceResult, result), title=title, console=console)

    def write_report(
        self, result: EvaluationResult, *, title: str, writer: RunWriter, folder: str
    ) -> None:
        """``report.md`` and a self-contained ``report.html`` (with the figures) under
        ``folder``."""
        from pixelseg.report.html import report_page

        markdown = markdown_report(cast(InstanceResult, result), title=title)
        writer.text(f"{folder}/report.md", markdown)
        if writer.enabled:
            writer.text(f"{folder}/report.html", report_page(markdown, title, writer, folder))
