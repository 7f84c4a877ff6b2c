"""``pixelseg evaluate``: a trained run's metrics on a split, through the Predictor."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from pixelseg.config import load_config
from pixelseg.engine.progress import progress_bar
from pixelseg.engine.run_dir import load_model, read_run
from pixelseg.engine.setup import prepare_job, task_module
from pixelseg.engine.writer import RunWriter, atomic_write_json
from pixelseg.inference.predictor import Predictor


def evaluate_semantic(predictor: Predictor, dataset: Any) -> dict[str, Any]:
    """Confusion-matrix metrics, AUC (two classes) and boundary F1 of ``predictor`` on ``dataset``.

    Padding, void and invalid pixels carry ``ignore_index`` in the masks and never count.
    """
    from pixelseg.metrics.boundary import BoundaryF1
    from pixelseg.tasks.semantic import SemanticMetrics

    info = predictor.info
    names = list(info.class_names)
    metrics = SemanticMetrics(len(names), ignore_index=info.ignore_index, class_names=names)
    boundary = BoundaryF1(len(names), ignore_index=info.ignore_index, class_names=names)
    start = time.perf_counter()
    with progress_bar("evaluate", total=len(dataset)) as advance:
        for index in range(len(dataset)):
            sample = dataset[index]
            prediction = predictor.predict_normalized(sample.image)
            target = sample.mask[None]
            metrics.update(prediction.probs[None].log(), target)
            boundary.update(prediction.label_map[None], target)
            advance()
    result = metrics.compute()
    result.update(boundary.compute())
    result["num_images"] = len(dataset)
    result["images_per_second"] = len(dataset) / max(time.perf_counter() - start, 1e-9)
    return result


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | None = None,
    split: str = "val",
    device: str = "auto",
    checkpoint: str = "best",
) -> dict[str, Any]:
    """Evaluate the ``best`` (or ``last``) checkpoint of ``run_dir`` on ``split``.

    Args:
        data: another dataset config to evaluate on (the run's own by default).
    """
    config, info = read_run(run_dir)
    if data:
        # The run decides the job; --data only points at (possibly other) data.
        config = dataclasses.replace(load_config(data), task=info.task)
    if info.task != "semantic":
        job = prepare_job(config, splits=(split,), info=info)
        result: dict[str, Any] = task_module(info.task).evaluate_job(
            load_model(run_dir, checkpoint=checkpoint), job, split, device=device
        )
    else:
        predictor = Predictor.from_run(run_dir, device=device, checkpoint=checkpoint)
        job = prepare_job(config, splits=(split,), info=predictor.info)
        result = evaluate_semantic(predictor, job.datasets[split])
        result["precision"] = predictor.precision
    result["split"] = split
    result["task"] = info.task
    result["checkpoint"] = checkpoint
    return result


def evaluate_command(
    run_dir: str, *, data: str | None, split: str, json_path: str | None, device: str
) -> int:
    """The ``pixelseg evaluate`` subcommand: print, and write reports under ``RUN_DIR/eval``."""
    from pixelseg.report.figures import save_confusion_matrix
    from pixelseg.report.html import semantic_html
    from pixelseg.report.tables import print_semantic_report, semantic_markdown

    result = evaluate_run(run_dir, data=data, split=split, device=device)
    console = Console(highlight=False)
    title = f"{Path(run_dir).name}: {split} split ({result['num_images']} images)"
    writer = RunWriter(run_dir)
    writer.json(f"eval/{split}/metrics.json", result)
    if result["task"] == "semantic":
        print_semantic_report(result, title=title, console=console)
        writer.text(f"eval/{split}/report.md", semantic_markdown(result, title=title))
        if writer.enabled:
            confusion = save_confusion_matrix(
                writer.path(f"eval/{split}/confusion.png"),
                result["confusion_matrix"],
                list(result["per_class_iou"]),
            )
            page = semantic_html(result, title=title, images=[confusion])
            writer.text(f"eval/{split}/report.html", page)
    else:
        module = task_module(result["task"])
        module.print_report(result, title=title, console=console)
        if hasattr(module, "markdown_report"):
            writer.text(f"eval/{split}/report.md", module.markdown_report(result, title=title))
    if json_path:
        atomic_write_json(json_path, result)
    console.print(f"reports in {writer.path(f'eval/{split}')}")
    return 0
