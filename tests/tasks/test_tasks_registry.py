"""The task registry: every config task has a factory that honours the Task protocol."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from pixelseg.config import Config, WatershedConfig
from pixelseg.config_validate import TASKS
from pixelseg.engine.run_dir import RunInfo
from pixelseg.engine.task import Task, TaskFactory
from pixelseg.errors import ConfigError
from pixelseg.structures import InstancePrediction, SemanticPrediction
from pixelseg.tasks.registry import get_task, task_names

PREDICTION_TYPES = {
    "semantic": SemanticPrediction,
    "watershed": InstancePrediction,
    "instance": InstancePrediction,
}


def _info(name: str) -> RunInfo:
    """A run record of task ``name`` (what ``run.json`` holds), without any data behind it."""
    extra: dict[str, Any] = {}
    if name == "watershed":
        extra = {"watershed": dataclasses.asdict(WatershedConfig())}
    classes = ["background", "interior", "boundary"] if name == "watershed" else ["a", "b"]
    return RunInfo(
        task=name,
        class_names=classes,
        palette=[],
        ignore_index=255,
        normalizer={"mean": [0.0], "std": [1.0]},
        model={},
        in_channels=1,
        loss={"name": "ce", "class_weights": None},
        extra=extra,
    )


def test_registry_covers_exactly_the_config_tasks() -> None:
    assert sorted(task_names()) == sorted(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_task_implements_the_protocol(name: str) -> None:
    factory: TaskFactory = get_task(name)
    assert factory.name == name
    task = factory.from_run(Config(task=name), _info(name))
    assert task.name == name
    # Every method of the Task protocol exists, with the protocol's keyword arguments.
    for member, spec in inspect.getmembers(Task, inspect.isfunction):
        if member.startswith("_"):
            continue
        implemented = getattr(task, member, None)
        assert callable(implemented), f"{name}: no Task.{member}"
        wanted = set(inspect.signature(spec).parameters) - {"self"}
        offered = set(inspect.signature(implemented).parameters)
        assert wanted <= offered, f"{name}.{member} lacks {wanted - offered}"
    assert isinstance(task.primary_metric, str)
    assert task.prediction_type is PREDICTION_TYPES[name]


def test_unknown_task_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown task 'panoptic'; known tasks: semantic"):
        get_task("panoptic")
