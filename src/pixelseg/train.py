"""``pixelseg train``: a config's task from the registry, trained by the engine."""

from __future__ import annotations

from pathlib import Path

from pixelseg.config import Config, load_config
from pixelseg.engine.distributed import is_main_process
from pixelseg.engine.fit import TrainSummary, fit
from pixelseg.errors import ConfigError
from pixelseg.tasks.registry import get_task

#: What a training run writes into its directory (``--overwrite`` removes exactly these).
RUN_FILES = ("config.json", "run.json", "metrics.jsonl", "train.log", "summary.json", "checkpoints")


def train(
    config: Config, run_dir: str | Path, *, resume: bool = False, device: str = "auto"
) -> TrainSummary:
    """Train ``config`` (any task) into ``run_dir``; ``resume`` continues a killed run."""
    return fit(config, run_dir, get_task(config.task), resume=resume, device=device)


def refuse_existing_run(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Keep a new run from mixing into an old one in ``run_dir``.

    Without ``resume``, a directory that holds a run's files is refused (its ``metrics.jsonl``
    and ``train.log`` would be appended to and its ``config.json`` replaced); ``overwrite``
    removes those files (:data:`RUN_FILES`, nothing else) first.

    Raises:
        ConfigError: ``run_dir`` holds a run and neither ``resume`` nor ``overwrite`` is set.
    """
    import shutil

    held = [name for name in RUN_FILES if (run_dir / name).exists()]
    if resume or not held:
        return
    if not overwrite:
        raise ConfigError(
            f"{run_dir} already holds a run ({', '.join(held)}): --resume continues it, "
            "--overwrite replaces it, or choose another --out"
        )
    for name in held:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def train_command(
    config_path: str,
    *,
    out: str | None,
    overrides: list[str],
    resume: bool,
    max_time: float | None,
    precision: str | None,
    device: str,
    overwrite: bool = False,
    report: bool = True,
) -> int:
    """The ``pixelseg train`` subcommand (``overwrite``: see :func:`refuse_existing_run`).

    With ``report``, the best checkpoint is then evaluated on val as ``pixelseg evaluate``
    does: its headline and warnings end the console output, and its report goes to
    ``RUN_DIR/eval/val``.
    """
    extra = list(overrides)
    if max_time is not None:
        extra.append(f"train.max_time={max_time}")
    if precision is not None:
        extra.append(f'train.precision="{precision}"')
    config = load_config(config_path, extra)
    run_dir = Path(out) if out else Path("runs") / Path(config_path).stem
    refuse_existing_run(run_dir, resume=resume, overwrite=overwrite)
    summary = train(config, run_dir, resume=resume, device=device)
    if report and summary.best_epoch > 0 and is_main_process():
        from pixelseg.inference.evaluate import evaluate_command

        return evaluate_command(str(run_dir), data=None, split="val", json_path=None, device=device)
    return 0
