"""``pixelseg evaluate``: a trained run's metrics on a split, through the Predictor."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console

from pixelseg.config import load_config
from pixelseg.engine.writer import RunWriter
from pixelseg.files import atomic_write_json
from pixelseg.inference.predictor import Predictor
from pixelseg.metrics.results import EvaluationResult
from pixelseg.tasks.registry import get_task


def evaluate_predictor(
    predictor: Predictor, *, data: str | None = None, split: str = "val"
) -> EvaluationResult:
    """Every metric of ``predictor``'s task on ``split`` of its run's data (or ``data``'s).

    Returns:
        The task's metrics plus ``split``, ``task`` and ``precision``.
    """
    config, info = predictor.config, predictor.info
    if config is None:
        raise ValueError("evaluate: the predictor has no config (use Predictor.from_run)")
    if data:
        # The run decides the job; --data only points at (possibly other) data.
        config = dataclasses.replace(load_config(data), task=info.task)
    datasets = get_task(info.task).build_datasets(config, (split,), info)
    result = predictor.task.evaluate(predictor.predict_normalized, datasets[split])
    result["split"] = split
    result["task"] = info.task
    result["precision"] = predictor.precision
    return result


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | None = None,
    split: str = "val",
    device: str = "auto",
    checkpoint: str = "best",
) -> EvaluationResult:
    """Evaluate the ``best`` (or ``last``) checkpoint of ``run_dir`` on ``split``.

    Args:
        data: another dataset config to evaluate on (the run's own by default).
    """
    predictor = Predictor.from_run(run_dir, device=device, checkpoint=checkpoint)
    result = evaluate_predictor(predictor, data=data, split=split)
    result["checkpoint"] = checkpoint
    return result


def evaluate_command(
    run_dir: str, *, data: str | None, split: str, json_path: str | None, device: str
) -> int:
    """The ``pixelseg evaluate`` subcommand: print, and write reports under ``RUN_DIR/eval``."""
    predictor = Predictor.from_run(run_dir, device=device)
    result = evaluate_predictor(predictor, data=data, split=split)
    result["checkpoint"] = "best"
    console = Console(highlight=False)
    title = f"{Path(run_dir).name}: {split} split ({result['num_images']} images)"
    writer = RunWriter(run_dir)
    folder = f"eval/{split}"
    writer.json(f"{folder}/metrics.json", result)
    predictor.task.print_report(result, title=title, console=console)
    predictor.task.write_report(result, title=title, writer=writer, folder=folder)
    if json_path:
        atomic_write_json(json_path, result)
    console.print(f"reports in {writer.path(folder)}")
    return 0
