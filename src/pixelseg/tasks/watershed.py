"""Semantic → instance: a semantic net learns interiors and boundaries, a watershed splits them.

Any registered semantic model is trained on targets derived from instance labels in the data
pipeline (:mod:`pixelseg.tasks.watershed_data`): background / interior / boundary with the U-Net
border weight map as per-pixel cross-entropy weights (plus Dice), optionally with one more output
channel regressing the distance to the boundary. After training the post-processing thresholds
are tuned on the val split and stored in the run directory (``postprocess.json`` and
``run.json``); evaluation reports instance metrics. ``[watershed] targets = "two_class"`` with
``postprocess = "connected_components"`` is the naive baseline, where touching objects merge.

The module provides what :func:`pixelseg.engine.setup.task_module` asks of a task module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

from pixelseg.config import Config, WatershedConfig
from pixelseg.engine.progress import progress_bar
from pixelseg.engine.run_dir import RunInfo
from pixelseg.engine.setup import Job
from pixelseg.engine.writer import RunWriter
from pixelseg.errors import ConfigError
from pixelseg.losses.dice import dice_loss
from pixelseg.structures import Batch
from pixelseg.tasks.watershed_data import (
    IGNORE_INDEX,
    THREE_CLASS_NAMES,
    TWO_CLASS_NAMES,
    WatershedTargetDataset,
    collate_watershed,
)
from pixelseg.tasks.watershed_inference import (
    WatershedMetrics,
    evaluate_job,
    markdown_report,
    predict_files,
    print_report,
)
from pixelseg.tasks.watershed_postprocess import (
    default_postprocess,
    params_summary,
    predict_maps,
    settings_from_dict,
    split_outputs,
    suppress_ignored,
    tune_postprocess,
)

__all__ = [
    "WatershedTask",
    "build_job",
    "evaluate_job",
    "markdown_report",
    "predict_files",
    "print_report",
]

PALETTE = [[0, 0, 0], [255, 255, 0], [255, 0, 0]]


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
    """

    name = "watershed"
    primary_metric = "matching_ap50"

    def __init__(
        self,
        settings: WatershedConfig,
        *,
        loss_name: str = "dice_ce",
        ce_weight: float = 1.0,
        dice_weight: float = 1.0,
        postprocess: dict[str, Any] | None = None,
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

    def step(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
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

    def update_metrics(self, metrics: Any, outputs: dict[str, torch.Tensor], batch: Batch) -> None:
        """Feed one validation batch to the accumulator."""
        metrics.update(outputs["outputs"].detach(), batch)

    def after_training(self, model: nn.Module, job: Job, writer: RunWriter) -> None:
        """Tune the post-processing thresholds on val with the best weights; store them.

        Writes ``postprocess.json`` (the chosen settings and the whole tuning table) and the
        chosen settings into ``run.json`` (``extra["postprocess"]``), which evaluation and
        prediction read.
        """
        model.eval()
        prob_maps, truths, distances = [], [], []
        dataset = job.datasets["val"]
        with progress_bar("tune post-processing", total=len(dataset)) as advance:
            for index in range(len(dataset)):
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
        if self.settings.tune:
            chosen, table = tune_postprocess(
                prob_maps, truths, self.settings, distances=distances or None
            )
        else:
            chosen, table = default_postprocess(self.settings), []
        self.postprocess = chosen
        job.info.extra["postprocess"] = chosen
        job.info.extra["postprocess_tuned_on"] = "val" if self.settings.tune else None
        writer.json(
            "postprocess.json",
            {
                "chosen": chosen,
                "tuned_on": job.info.extra["postprocess_tuned_on"],
                "score": "matching_ap50_pooled",
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


def _resolve_loss(config: Config, settings: WatershedConfig) -> dict[str, Any]:
    name = "dice_ce" if config.loss.name == "auto" else config.loss.name
    if name not in ("ce", "dice_ce"):
        raise ConfigError(f"loss.name: the watershed task supports 'ce' or 'dice_ce', not {name!r}")
    if settings.targets == "three_class":
        weighting = f"U-Net border weight map (w0 = {settings.w0:g}, sigma = {settings.sigma:g} px)"
        reason = "per-pixel weights emphasise the gaps between touching objects"
    else:
        weighting, reason = "none", "naive two-class baseline: touching objects will merge"
    if settings.distance_head:
        reason += f"; distance head with {settings.distance_loss} loss"
    return {"name": name, "weighting": weighting, "reason": reason, "class_weights": None}


def build_job(config: Config, splits: Sequence[str], info: RunInfo | None) -> Job:
    """The watershed job of a config; ``info`` (a run directory's) reuses its decisions.

    The targets and post-processing come from ``info.extra`` when evaluating a trained run, so
    evaluating on other data (``--data``) keeps the run's settings.
    """
    from pixelseg.data.instance_build import build_instance_datasets
    from pixelseg.data.normalize import Normalizer
    from pixelseg.engine.run_dir import build_model_from_info
    from pixelseg.models.registry import create_model

    settings = config.watershed if info is None else settings_from_dict(info.extra["watershed"])
    normalizer = Normalizer.from_dict(info.normalizer) if info else None
    instance_sets = build_instance_datasets(
        config, splits, normalizer=normalizer, verify=info is None
    )
    datasets = {name: WatershedTargetDataset(ds, settings) for name, ds in instance_sets.items()}
    first = next(iter(instance_sets.values()))
    class_names = THREE_CLASS_NAMES if settings.targets == "three_class" else TWO_CLASS_NAMES
    if info is None:
        model = create_model(
            config.model.name,
            num_classes=len(class_names) + int(settings.distance_head),
            in_channels=first.in_channels,
            weights=config.model.weights,
            **config.model.options,
        )
        info = RunInfo(
            task="watershed",
            class_names=list(class_names),
            palette=PALETTE[: len(class_names)],
            ignore_index=IGNORE_INDEX,
            normalizer=first.normalizer.to_dict(),  # type: ignore[union-attr]
            model=dict(model.config),  # type: ignore[arg-type]
            in_channels=first.in_channels,
            loss=_resolve_loss(config, settings),
            extra={
                "watershed": dataclasses.asdict(settings),
                "object_classes": list(first.classes),
                "postprocess": default_postprocess(settings),
            },
        )
    else:
        model = build_model_from_info(info)
    task = WatershedTask(
        settings,
        loss_name=info.loss.get("name", "dice_ce"),
        ce_weight=config.loss.ce_weight,
        dice_weight=config.loss.dice_weight,
        postprocess=info.extra.get("postprocess"),
    )
    return Job(task=task, datasets=datasets, collate=collate_watershed, info=info, model=model)
