"""A watershed config turned into a job: instance data with derived targets, loss, model."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from pixelseg.config import Config, WatershedConfig
from pixelseg.engine.run_dir import RunInfo, build_model_from_info
from pixelseg.engine.task import Job
from pixelseg.errors import ConfigError
from pixelseg.postprocess.watershed import default_postprocess
from pixelseg.tasks.watershed.data import (
    IGNORE_INDEX,
    THREE_CLASS_NAMES,
    TWO_CLASS_NAMES,
    WatershedTargetDataset,
    collate_watershed,
)
from pixelseg.tasks.watershed.maps import settings_from_dict

PALETTE = [[0, 0, 0], [255, 255, 0], [255, 0, 0]]


def resolve_watershed_loss(config: Config, settings: WatershedConfig) -> dict[str, Any]:
    """The loss record of a new run (``run.json``'s ``loss``), with the reason.

    Raises:
        ConfigError: a loss other than ``ce`` or ``dice_ce``.
    """
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


def run_settings(config: Config, info: RunInfo | None) -> WatershedConfig:
    """The ``[watershed]`` settings: a trained run's own (``info.extra``), else the config's."""
    return config.watershed if info is None else settings_from_dict(info.extra["watershed"])


def build_watershed_datasets(
    config: Config, splits: Sequence[str], info: RunInfo | None
) -> Mapping[str, WatershedTargetDataset]:
    """Instance datasets of ``config`` wrapped to derive the watershed targets per sample
    (a trained run's normalisation and crop sampling when ``info``)."""
    from pixelseg.data.instance.build import build_instance_datasets
    from pixelseg.data.normalize import Normalizer

    settings = run_settings(config, info)
    normalizer = Normalizer.from_dict(info.normalizer) if info else None
    instance_sets = build_instance_datasets(
        config,
        splits,
        normalizer=normalizer,
        verify=info is None,
        crop_sampling=info.extra.get("crop_sampling") if info else None,
    )
    return {name: WatershedTargetDataset(ds, settings) for name, ds in instance_sets.items()}


def build_watershed_job(config: Config, splits: Sequence[str], info: RunInfo | None) -> Job:
    """The watershed job of a config; ``info`` (a run directory's) reuses its decisions.

    The targets and post-processing come from ``info.extra`` when evaluating a trained run, so
    evaluating on other data (``--data``) keeps the run's settings.
    """
    from pixelseg.data.input_spec import describe_training_input
    from pixelseg.data.instance.compact import instance_key
    from pixelseg.models.registry import create_model
    from pixelseg.tasks.watershed.factory import watershed_task_from_run

    settings = run_settings(config, info)
    datasets = build_watershed_datasets(config, splits, info)
    first = next(iter(datasets.values())).instances
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
            loss=resolve_watershed_loss(config, settings),
            extra={
                "watershed": dataclasses.asdict(settings),
                "object_classes": list(first.classes),
                "postprocess": default_postprocess(settings),
            },
            input=describe_training_input(
                datasets["train"].instances if "train" in datasets else first,
                key=instance_key,
                nodata=config.data.nodata,
            ).to_dict(),
        )
        sampling = datasets["train"].crop_sampling if "train" in datasets else None
        if sampling:
            info.extra["crop_sampling"] = sampling
    else:
        model = build_model_from_info(info)
    task = watershed_task_from_run(config, info)
    return Job(task=task, datasets=datasets, collate=collate_watershed, info=info, model=model)
