"""The watershed task's factory: a job from a config, datasets or the task from a run."""

from __future__ import annotations

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo
from pixelseg.engine.task import TaskFactory
from pixelseg.tasks.watershed.job import build_watershed_datasets, build_watershed_job, run_settings
from pixelseg.tasks.watershed.task import WatershedTask


def watershed_task_from_run(config: Config, info: RunInfo) -> WatershedTask:
    """The task of a trained run: its targets, loss and tuned post-processing."""
    return WatershedTask(
        run_settings(config, info),
        loss_name=info.loss.get("name", "dice_ce"),
        ce_weight=config.loss.ce_weight,
        dice_weight=config.loss.dice_weight,
        postprocess=info.extra.get("postprocess"),
        postprocess_tuned_on=info.extra.get("postprocess_tuned_on"),
    )


WATERSHED = TaskFactory(
    name="watershed",
    build_job=build_watershed_job,
    build_datasets=build_watershed_datasets,
    from_run=watershed_task_from_run,
)
