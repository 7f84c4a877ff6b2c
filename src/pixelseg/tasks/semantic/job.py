"""A semantic config turned into a job: datasets, the loss chosen from the data, the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo, build_model_from_info
from pixelseg.engine.task import Job


def resolve_loss(config: Config, counts: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Apply ``loss.name = "auto"`` / ``class_weighting = "auto"`` from the class frequencies.

    Returns:
        ``{"name", "weighting", "reason", "class_weights"}`` for the log and ``run.json``.
    """
    from pixelseg.data.class_weights import class_weights_from_counts
    from pixelseg.data.loss_rule import choose_loss

    name, weighting, reason = choose_loss(counts.clamp(min=0), class_names=class_names)
    if config.loss.name != "auto":
        name, reason = config.loss.name, f"loss.name = {config.loss.name!r} set in the config"
    if config.loss.class_weighting != "auto":
        weighting = config.loss.class_weighting
    weights = None
    if weighting in ("median", "inverse") and name in ("ce", "dice_ce", "focal", "focal_dice"):
        weights = class_weights_from_counts(counts, method=weighting).tolist()
    else:
        weighting = "none"
    return {"name": name, "weighting": weighting, "reason": reason, "class_weights": weights}


def build_loss_fn(config: Config, info: RunInfo) -> torch.nn.Module:
    """The training loss a run recorded (``info.loss``), with its class weights."""
    from pixelseg.losses.combined import build_loss

    weights = info.loss.get("class_weights")
    return build_loss(
        replace(config.loss, name=info.loss["name"]),
        num_classes=len(info.class_names),
        ignore_index=info.ignore_index,
        class_weights=torch.tensor(weights, dtype=torch.float32) if weights else None,
    )


def build_semantic_job(config: Config, splits: Sequence[str], info: RunInfo | None) -> Job:
    """The semantic job of ``config``; a trained run's ``info`` reuses its decisions.

    A new run records how its training crops are placed (``info.extra["crop_sampling"]``, see
    :mod:`pixelseg.data.foreground`), so that a resumed run crops exactly as it started, and its
    training input (``info.input``: dtype, bands, scaling, band statistics, nodata), which the
    Predictor checks images against.
    """
    from pixelseg.data.build import build_datasets, class_pixel_counts, collate_semantic
    from pixelseg.data.folder import sample_key
    from pixelseg.data.input_spec import describe_training_input
    from pixelseg.data.normalize import Normalizer
    from pixelseg.models.registry import create_model
    from pixelseg.tasks.semantic.factory import semantic_task_from_run

    normalizer = Normalizer.from_dict(info.normalizer) if info else None
    # A resumed run crops as it started: its recorded crop sampling, not a new decision.
    recorded = info.extra.get("crop_sampling") if info else None
    datasets = build_datasets(
        config, splits, normalizer=normalizer, verify=info is None, crop_sampling=recorded
    )
    first = next(iter(datasets.values()))
    classmap = first.classmap
    class_names = list(classmap.classes)
    if info is None:
        train = datasets["train"]
        # The data check already counted the classes; decode the masks only when it did not run.
        known = train.class_counts
        counts = torch.as_tensor(
            class_pixel_counts(train) if known is None else known, dtype=torch.float64
        )
        model = create_model(
            config.model.name,
            num_classes=len(class_names),
            in_channels=first.in_channels,
            weights=config.model.weights,
            **config.model.options,
        )
        info = RunInfo(
            task=config.task,
            class_names=class_names,
            palette=[list(c) for c in classmap.palette],
            ignore_index=classmap.ignore_index,
            normalizer=first.normalizer.to_dict(),  # type: ignore[union-attr]
            model=dict(model.config),  # type: ignore[arg-type]
            in_channels=first.in_channels,
            loss=resolve_loss(config, counts, class_names),
            extra={"crop_sampling": train.crop_sampling} if train.crop_sampling else {},
            # What the Predictor checks an image against (from the cache: nothing decoded).
            input=describe_training_input(
                train, key=sample_key, nodata=config.data.nodata
            ).to_dict(),
        )
    else:
        model = build_model_from_info(info)
    task = semantic_task_from_run(config, info)
    return Job(task=task, datasets=datasets, collate=collate_semantic, info=info, model=model)
