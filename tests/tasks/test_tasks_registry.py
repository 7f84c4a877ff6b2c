"""The task registry: every config task has a factory that honours the Task protocol."""

from __future__ import annotations

import inspect

import pytest

from pixelseg.config import TASKS
from pixelseg.engine.task import Task, TaskFactory
from pixelseg.errors import ConfigError
from pixelseg.structures import InstancePrediction, SemanticPrediction
from pixelseg.tasks.registry import get_task, task_names

PREDICTION_TYPES = {
    "semantic": SemanticPrediction,
    "watershed": InstancePrediction,
    "instance": InstancePrediction,
}


def test_registry_covers_exactly_the_config_tasks() -> None:
    assert sorted(task_names()) == sorted(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_factory_implements_the_protocols(name: str) -> None:
    factory: TaskFactory = get_task(name)
    assert factory.name == name
    for member in ("build_job", "build_datasets", "from_run"):
        assert callable(getattr(factory, member)), f"{name}: no {member}"
    # Every method of the Task protocol exists, with the protocol's keyword arguments.
    for member, spec in inspect.getmembers(Task, inspect.isfunction):
        if member.startswith("_"):
            continue
        implemented = getattr(factory, member, None)
        assert callable(implemented), f"{name}: no Task.{member}"
        wanted = set(inspect.signature(spec).parameters)
        offered = set(inspect.signature(implemented).parameters)
        assert wanted <= offered, f"{name}.{member} lacks {wanted - offered}"
    assert isinstance(factory.primary_metric, str)  # type: ignore[attr-defined]
    assert factory.prediction_type is PREDICTION_TYPES[name]  # type: ignore[attr-defined]


def test_unknown_task_is_named() -> None:
    with pytest.raises(ConfigError, match="unknown task 'panoptic'; known tasks: semantic"):
        get_task("panoptic")
