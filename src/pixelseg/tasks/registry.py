"""The task registry: ``config.task`` -> the job that implements :mod:`pixelseg.engine.task`.

Each entry imports its task lazily (a semantic run never pays for Mask R-CNN's imports), and
names are plain keys, not module paths: adding a task is one function and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from pixelseg.engine.task import TaskFactory
from pixelseg.errors import ConfigError


def _semantic() -> TaskFactory:
    from pixelseg.tasks.semantic.task import SemanticTask

    return SemanticTask


def _watershed() -> TaskFactory:
    from pixelseg.tasks.watershed.task import WatershedTask

    return WatershedTask


def _instance() -> TaskFactory:
    from pixelseg.tasks.instance.task import InstanceTask

    return InstanceTask


_TASKS: dict[str, Callable[[], TaskFactory]] = {
    "semantic": _semantic,
    "watershed": _watershed,
    "instance": _instance,
}


def task_names() -> list[str]:
    """The registered task names, in registration order."""
    return list(_TASKS)


def get_task(name: str) -> TaskFactory:
    """The factory of task ``name`` (a config's or a run's ``task``).

    Raises:
        ConfigError: no task of that name (the message lists the known ones).
    """
    if name not in _TASKS:
        raise ConfigError(f"task: unknown task {name!r}; known tasks: {', '.join(_TASKS)}")
    return _TASKS[name]()
