"""``pixelseg train``: a config's task from the registry, trained by the engine."""

from __future__ import annotations

from pathlib import Path

from pixelseg.config import Config, load_config
from pixelseg.engine.fit import TrainSummary, fit
from pixelseg.tasks.registry import get_task


def train(
    config: Config, run_dir: str | Path, *, resume: bool = False, device: str = "auto"
) -> TrainSummary:
    """Train ``config`` (any task) into ``run_dir``; ``resume`` continues a killed run."""
    return fit(config, run_dir, get_task(config.task), resume=resume, device=device)


def train_command(
    config_path: str,
    *,
    out: str | None,
    overrides: list[str],
    resume: bool,
    max_time: float | None,
    precision: str | None,
    device: str,
) -> int:
    """The ``pixelseg train`` subcommand."""
    extra = list(overrides)
    if max_time is not None:
        extra.append(f"train.max_time={max_time}")
    if precision is not None:
        extra.append(f'train.precision="{precision}"')
    config = load_config(config_path, extra)
    run_dir = Path(out) if out else Path("runs") / Path(config_path).stem
    train(config, run_dir, resume=resume, device=device)
    return 0
