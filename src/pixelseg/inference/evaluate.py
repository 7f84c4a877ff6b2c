"""``pixelseg evaluate``: a trained run's metrics on a split, through the Predictor."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.console import Console

from pixelseg.config import Config, load_config
from pixelseg.engine.run_dir import RunInfo
from pixelseg.engine.writer import RunWriter
from pixelseg.errors import ConfigError, DataError
from pixelseg.files import atomic_write_json
from pixelseg.inference.evaluate_figures import write_figures
from pixelseg.inference.predictor import Predictor
from pixelseg.metrics.results import EvaluationResult
from pixelseg.tasks.registry import get_task


def _other_data(data: str, info: RunInfo) -> Config:
    """``--data``'s config for a run: the run decides the job, the config only the data.

    Raises:
        ConfigError: the config's classes are not the run's (names and order).
    """
    config = dataclasses.replace(load_config(data), task=info.task)
    expected = list(info.extra.get("object_classes") or info.class_names)
    if list(config.data.classes) != expected:
        raise ConfigError(
            f"--data {data}: classes {list(config.data.classes)} are not the run's {expected} "
            "(names and order must match, or every metric would compare the wrong classes)"
        )
    return config


def _precision(run_dir: str | Path, precision: str | None, device: str) -> str:
    """``precision``, or the one the run trained (and validated) in — its ``auto`` resolved by
    the training rule — so that evaluation measures what validation measured."""
    if precision is not None:
        return precision
    from pixelseg.engine.precision import resolve_device, resolve_precision
    from pixelseg.engine.run_dir import read_run

    return resolve_precision(read_run(run_dir)[0].train.precision, resolve_device(device))


def _predictor(
    run_dir: str | Path, device: str, checkpoint: str, precision: str | None, tta: bool
) -> Predictor:
    """The Predictor that evaluation runs (the run's training precision unless told)."""
    return Predictor.from_run(
        run_dir,
        device=device,
        checkpoint=checkpoint,
        precision=_precision(run_dir, precision, device),
        tta=tta,
    )


def selection_notes(info: RunInfo, *, split: str, checkpoint: str, own_data: bool) -> list[str]:
    """What the reported split decided in the run, and the loss it trained with, said next to
    its numbers.

    The best checkpoint is chosen on the run's ``val`` split, and the watershed / Mask R-CNN
    thresholds are tuned there: numbers on that split are optimistic.
    """
    notes = []
    loss = info.loss
    if loss.get("name"):
        weighting = loss.get("weighting") or "none"
        why = f": {loss['reason']}" if loss.get("reason") else ""
        notes.append(f"trained with loss {loss['name']}, class weighting {weighting}{why}")
    if not own_data or split != "val":
        return notes
    if checkpoint == "best":
        notes.append(
            "the val split chose this (best) checkpoint: its numbers are optimistic; report "
            "a split that chose nothing (test), or evaluate --checkpoint last"
        )
    if info.extra.get("postprocess_tuned_on") == "val" or (
        info.task == "instance" and info.extra.get("postprocess")
    ):
        notes.append("the val split also tuned the post-processing thresholds")
    return notes


def evaluate_predictor(
    predictor: Predictor,
    *,
    data: str | None = None,
    split: str = "val",
    figures: tuple[RunWriter, str] | None = None,
) -> EvaluationResult:
    """Every metric of ``predictor``'s task on ``split`` of its run's data (or ``data``'s);
    with ``figures`` (the run's writer and a folder), the report's pictures are drawn there
    (:mod:`pixelseg.inference.evaluate_figures`).

    Returns:
        The task's metrics plus ``split``, ``task`` and ``precision``.

    Raises:
        ConfigError: ``data``'s classes differ from the run's.
        DataError: the run's data folder is missing (a moved run: use ``data``).
    """
    config, info = predictor.config, predictor.info
    if config is None:
        raise ValueError("evaluate: the predictor has no config (use Predictor.from_run)")
    if data:
        config = _other_data(data, info)
    elif not Path(config.data.root).is_dir():
        raise DataError(
            config.data.root,
            "the run's data folder is not here (a moved run?); evaluate on the data where it "
            "is with --data CONFIG",
        )
    datasets = get_task(info.task).build_datasets(config, (split,), info)
    result = predictor.task.evaluate(predictor.predict_normalized, datasets[split])
    if figures is not None:  # drawn now, while the split is at hand
        writer, folder = figures
        write_figures(predictor, datasets[split], result, writer, folder)
    result["split"] = split
    result["task"] = info.task
    result["precision"] = predictor.precision
    result["tta"] = bool(predictor.tta)
    if predictor.plan is not None:
        result["inference"] = {"plan": predictor.plan.name, "reason": predictor.plan.reason}
    return result


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | None = None,
    split: str = "val",
    device: str = "auto",
    checkpoint: str = "best",
    precision: str | None = None,
    tta: bool = False,
) -> EvaluationResult:
    """Evaluate the ``best`` (or ``last``) checkpoint of ``run_dir`` on ``split``.

    Args:
        data: another dataset config to evaluate on (the run's own by default).
        precision: default the run's training precision (what its validation ran in);
            ``auto`` measures the fastest path as ``predict`` does.
        tta: average each prediction over the eight symmetries (dense tasks), as
            ``predict --tta`` does: whether it pays is measured on val, not guessed.
    """
    predictor = _predictor(run_dir, device, checkpoint, precision, tta)
    result = evaluate_predictor(predictor, data=data, split=split)
    result["checkpoint"] = checkpoint
    result["notes"] = selection_notes(
        predictor.info, split=split, checkpoint=checkpoint, own_data=data is None
    )
    return result


def evaluate_command(
    run_dir: str,
    *,
    data: str | None,
    split: str,
    json_path: str | None,
    device: str,
    checkpoint: str = "best",
    precision: str | None = None,
    report: str | None = None,
    tta: bool = False,
) -> int:
    """The ``pixelseg evaluate`` subcommand: print, and write the report (``report.html``,
    ``report.md``, ``metrics.json``, its PNGs) under ``RUN_DIR/eval/<split>`` or ``report``;
    ``tta`` as :func:`evaluate_run`'s."""
    predictor = _predictor(run_dir, device, checkpoint, precision, tta)
    writer = RunWriter(report if report else run_dir)
    folder = "." if report else f"eval/{split}"
    result = evaluate_predictor(predictor, data=data, split=split, figures=(writer, folder))
    result["checkpoint"] = checkpoint
    result["notes"] = selection_notes(
        predictor.info, split=split, checkpoint=checkpoint, own_data=data is None
    )
    console = Console(highlight=False)
    title = f"{Path(run_dir).name}: {split} split ({result['num_images']} images)"
    writer.json(f"{folder}/metrics.json", result)
    predictor.task.print_report(result, title=title, console=console)
    for note in result["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)
    predictor.task.write_report(result, title=title, writer=writer, folder=folder)
    if json_path:
        atomic_write_json(json_path, result)
    console.print(f"reports in {writer.path(folder)}")
    return 0
