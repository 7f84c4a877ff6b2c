"""The task registry: ``config.task`` -> the job that implements :mod:`pixelseg.engine.task`.

Each entry imports its task lazily (a semantic run never pays for Mask R-CNN's imports), and
names are plain keys, not module paths: adding a task is one function and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from pixelseg.engine.task import TaskFactory
from pixelseg.errors import ConfigError


def _semantic() -> TaskFactory:
    from pixelseg.tasks.semantic.factory import SEMANTIC

    return SEMANTIC


def _watershed() -> TaskFactory:
    from pixelseg.tasks.watershed.factory import WATERSHED

    return WATERSHED


def _instance() -> TaskFactory:
    from pixelseg.tasks.instance.factory import INSTANCE

    return INSTANCE


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
