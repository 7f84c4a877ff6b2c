"""The instance task's factory: a job from a config, datasets or the task from a run."""

from __future__ import annotations

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo
from pixelseg.engine.task import TaskFactory
from pixelseg.tasks.instance.job import build_instance_job, build_instance_job_datasets
from pixelseg.tasks.instance.outputs import DEFAULT_MASK_THRESHOLD, DEFAULT_SCORE_THRESHOLD
from pixelseg.tasks.instance.task import InstanceTask


def instance_task_from_run(config: Config, info: RunInfo) -> InstanceTask:
    """The task of a trained run, with its tuned thresholds."""
    post = info.extra.get("postprocess") or {}
    return InstanceTask(
        num_classes=len(info.class_names),
        class_names=info.class_names,
        score_threshold=float(post.get("score_threshold", DEFAULT_SCORE_THRESHOLD)),
        mask_threshold=float(post.get("mask_threshold", DEFAULT_MASK_THRESHOLD)),
        tuned_on="val" if post else None,
    )


INSTANCE = TaskFactory(
    name="instance",
    build_job=build_instance_job,
    build_datasets=build_instance_job_datasets,
    from_run=instance_task_from_run,
)
