"""An instance config turned into a job: detection datasets, anchors from the data, Mask R-CNN."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pixelseg.config import Config
from pixelseg.data.instance.dataset import DEFAULT_IGNORE_INDEX, collate_detection
from pixelseg.engine.run_dir import RunInfo, build_model_from_info
from pixelseg.engine.task import Job
from pixelseg.tasks.instance.anchors import resolve_anchor_sizes


def build_instance_job_datasets(
    config: Config, splits: Sequence[str], info: RunInfo | None
) -> Mapping[str, Any]:
    """The instance datasets of ``config`` (a trained run's normalisation and crop sampling
    when ``info``)."""
    from pixelseg.data.instance.build import build_instance_datasets
    from pixelseg.data.normalize import Normalizer

    normalizer = Normalizer.from_dict(info.normalizer) if info else None
    return build_instance_datasets(
        config,
        splits,
        normalizer=normalizer,
        verify=info is None,
        crop_sampling=info.extra.get("crop_sampling") if info else None,
    )


def _check_model_name(name: str) -> None:
    from pixelseg.errors import ConfigError
    from pixelseg.models.mask_rcnn import MASK_RCNN_PRESETS

    if name not in MASK_RCNN_PRESETS:
        raise ConfigError(
            f"model.name: task 'instance' trains a Mask R-CNN, got {name!r}; choose from "
            f"{', '.join(sorted(MASK_RCNN_PRESETS))} (or task 'watershed' for semantic models)"
        )


def build_instance_job(config: Config, splits: Sequence[str], info: RunInfo | None) -> Job:
    """The datasets, model, task and run record of an instance config.

    A new run (``info`` None) takes the anchor sizes from the config's ``model.options`` or,
    when unset, from the object sizes of the training split (as ``pixelseg check`` suggests);
    a trained run (``info`` given) rebuilds exactly its recorded model and thresholds.

    Raises:
        ConfigError: the model is not a Mask R-CNN preset, or an option is invalid.
        DataError: the dataset has errors.
    """
    from pixelseg.data.input_spec import describe_training_input
    from pixelseg.data.instance.compact import instance_key
    from pixelseg.models.registry import create_model
    from pixelseg.tasks.instance.factory import instance_task_from_run

    if info is None:
        _check_model_name(config.model.name)
    datasets = build_instance_job_datasets(config, splits, info)
    first = next(iter(datasets.values()))
    if info is None:
        options = dict(config.model.options)
        anchors = resolve_anchor_sizes(options.get("anchor_sizes"), datasets.get("train"))
        options["anchor_sizes"] = anchors["anchor_sizes"]
        model = create_model(
            config.model.name,
            num_classes=first.num_classes,
            in_channels=first.in_channels,
            weights=config.model.weights,
            **options,
        )
        info = RunInfo(
            task="instance",
            class_names=list(first.classes),
            palette=[],
            ignore_index=DEFAULT_IGNORE_INDEX,
            normalizer=first.normalizer.to_dict(),  # type: ignore[union-attr]
            model=dict(model.config),  # type: ignore[arg-type]
            in_channels=first.in_channels,
            loss={
                "name": "mask_rcnn",
                "weighting": "none",
                "reason": "Mask R-CNN's own losses (RPN objectness and boxes, class, box, mask), "
                "summed",
            },
            extra={"anchors": anchors},
            input=describe_training_input(
                datasets.get("train", first), key=instance_key, nodata=config.data.nodata
            ).to_dict(),
        )
        sampling = getattr(datasets.get("train"), "crop_sampling", None)
        if sampling:
            info.extra["crop_sampling"] = sampling
    else:
        model = build_model_from_info(info)
    task = instance_task_from_run(config, info)
    return Job(task=task, datasets=datasets, collate=collate_detection, info=info, model=model)
