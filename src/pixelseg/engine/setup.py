"""Turn a config into the pieces a run needs: datasets, model, loss and task.

Training decides (and records in ``run.json``) what later commands must reuse: the class map,
the normalisation statistics from the training split, the model config and the loss choice.
Evaluation and prediction rebuild the same pieces from that record.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import torch
from torch import nn

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo, build_model_from_info
from pixelseg.tasks.base import Task


@dataclass
class Job:
    """Everything :func:`pixelseg.engine.fit.fit` and ``evaluate`` need for one config."""

    task: Task
    datasets: Mapping[str, Any]
    collate: Callable[[Sequence[Any]], Any]
    info: RunInfo
    model: nn.Module


def resolve_loss(config: Config, counts: torch.Tensor, class_names: list[str]) -> dict[str, Any]:
    """Apply ``loss.name = "auto"`` / ``class_weighting = "auto"`` from the class frequencies.

    Returns:
        ``{"name", "weighting", "reason", "class_weights"}`` for the log and ``run.json``.
    """
    from pixelseg.data.class_weights import class_weights_from_counts
    from pixelseg.losses.combined import choose_loss

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


def _semantic_job(config: Config, splits: Sequence[str], info: RunInfo | None) -> Job:
    from pixelseg.data.build import build_datasets, class_pixel_counts, collate_semantic
    from pixelseg.data.normalize import Normalizer
    from pixelseg.losses.combined import build_loss
    from pixelseg.models.registry import create_model
    from pixelseg.tasks.semantic import SemanticTask

    normalizer = Normalizer.from_dict(info.normalizer) if info else None
    datasets = build_datasets(config, splits, normalizer=normalizer, verify=info is None)
    first = next(iter(datasets.values()))
    classmap = first.classmap  # type: ignore[attr-defined]
    class_names = list(classmap.classes)
    if info is None:
        counts = torch.as_tensor(class_pixel_counts(datasets["train"]), dtype=torch.float64)
        loss = resolve_loss(config, counts, class_names)
        model = create_model(
            config.model.name,
            num_classes=len(class_names),
            in_channels=first.in_channels,  # type: ignore[attr-defined]
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
            in_channels=first.in_channels,  # type: ignore[attr-defined]
            loss=loss,
        )
    else:
        model = build_model_from_info(info)
    weights = info.loss.get("class_weights")
    loss_cfg = replace(config.loss, name=info.loss["name"])
    loss_fn = build_loss(
        loss_cfg,
        num_classes=len(class_names),
        ignore_index=info.ignore_index,
        class_weights=torch.tensor(weights, dtype=torch.float32) if weights else None,
    )
    task = SemanticTask(
        loss_fn,
        num_classes=len(class_names),
        ignore_index=info.ignore_index,
        class_names=class_names,
    )
    return Job(task=task, datasets=datasets, collate=collate_semantic, info=info, model=model)


def task_module(task: str) -> ModuleType:
    """The module of a non-semantic job (``pixelseg.tasks.watershed``, ``...instance``).

    Such a module provides ``build_job(config, splits, info) -> Job``,
    ``evaluate_job(model, job, split, *, device) -> dict``,
    ``print_report(result, *, title, console)`` and
    ``predict_files(run_dir, files, out, *, device) -> (written, skipped)``; its task object may
    have ``after_training(model, job, writer)`` (threshold tuning on val, stored in the run).
    """
    return importlib.import_module(f"pixelseg.tasks.{task}")


def prepare_job(
    config: Config, *, splits: Sequence[str] = ("train", "val"), info: RunInfo | None = None
) -> Job:
    """Build the job a config describes; ``info`` (from a run directory) reuses its decisions."""
    if config.task == "semantic":
        return _semantic_job(config, splits, info)
    job: Job = task_module(config.task).build_job(config, splits, info)
    return job
