"""The semantic task's factory: a job from a config, datasets or the task from a run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo
from pixelseg.engine.task import TaskFactory
from pixelseg.tasks.semantic.job import build_loss_fn, build_semantic_job
from pixelseg.tasks.semantic.task import SemanticTask


def semantic_task_from_run(config: Config, info: RunInfo) -> SemanticTask:
    """The task of a trained run (its recorded loss, classes and ignore index)."""
    return SemanticTask(
        build_loss_fn(config, info),
        num_classes=len(info.class_names),
        ignore_index=info.ignore_index,
        class_names=list(info.class_names),
    )


def semantic_datasets(config: Config, splits: Sequence[str], info: RunInfo) -> Mapping[str, Any]:
    """The requested splits with the run's normalisation (no augmentation)."""
    from pixelseg.data.build import build_datasets
    from pixelseg.data.normalize import Normalizer

    normalizer = Normalizer.from_dict(info.normalizer)
    return build_datasets(config, splits, normalizer=normalizer, verify=False)


SEMANTIC = TaskFactory(
    name="semantic",
    build_job=build_semantic_job,
    build_datasets=semantic_datasets,
    from_run=semantic_task_from_run,
)
