"""The pictures of ``pixelseg evaluate``'s report, drawn from the predictor and the split.

Every task: the training curves (``metrics.jsonl`` of the run: loss and the validation metric
against wall-clock seconds). Semantic runs: per-class IoU bars with their bootstrap intervals and
a gallery of the best, median and worst images by per-image mIoU (image | truth | prediction |
error map). Instance and watershed runs: matching AP at each IoU threshold and the true vs
predicted count of every image, and the images with the most merges and splits outlined. The
files go under the report's folder; the task's
``write_report`` embeds those present, in
:data:`~pixelseg.report.evaluation_figures.FIGURES` order.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pixelseg.engine.writer import RunWriter
from pixelseg.inference.predictor import Predictor
from pixelseg.metrics.results import EvaluationResult
from pixelseg.report import evaluation_figures as figures
from pixelseg.report.instance_figures import save_merge_split_examples
from pixelseg.structures import InstancePrediction, Region, SemanticPrediction


def _records(run_dir: Path | None) -> list[dict[str, Any]]:
    path = None if run_dir is None else run_dir / "metrics.jsonl"
    if path is None or not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill: the curves do without it
    return records


def _gallery_rows(predictor: Predictor, dataset: Any, result: dict[str, Any]) -> list[Any]:
    from pixelseg.data.io import read_image

    scored = [
        (entry["miou"], index)
        for index, entry in enumerate(result.get("per_image_miou", []))
        if not math.isnan(entry["miou"])
    ]
    if not scored:
        return []
    scored.sort()
    picks = {"worst": scored[0], "median": scored[len(scored) // 2], "best": scored[-1]}
    rows = []
    for label, (value, index) in picks.items():
        sample = dataset[index]
        height, width = sample.meta.get("orig_size", sample.image.shape[-2:])
        prediction = predictor.predict_normalized(sample.image, region=Region((height, width)))
        assert isinstance(prediction, SemanticPrediction)
        image = read_image(sample.meta["image_path"])[:height, :width]
        truth = sample.mask[:height, :width].numpy()
        title = f"{label}: {sample.id} (mIoU {100 * value:.1f} %)"
        rows.append((title, image, truth, prediction.label_map.numpy()))
    return rows


def _truth_labels(sample: Any, height: int, width: int) -> Any:
    """The sample's true objects as one ``(H, W)`` label image (later masks over earlier)."""
    import numpy as np

    if hasattr(sample, "instances"):
        return sample.instances[:height, :width].numpy()
    labels = np.zeros((height, width), dtype=np.int32)
    for k, mask in enumerate(sample.masks.bool().numpy(), start=1):
        labels[mask[:height, :width]] = k
    return labels


def _merge_split_rows(
    predictor: Predictor, dataset: Any, result: dict[str, Any], count: int = 3
) -> list[Any]:
    """The ``count`` images with the most merges plus splits (none: no rows), re-predicted."""
    from pixelseg.data.io import read_image

    per_image = (result.get("counting") or {}).get("per_image", [])
    scored = sorted(
        ((int(c["merges"]) + int(c["splits"]), index) for index, c in enumerate(per_image)),
        reverse=True,
    )
    rows = []
    for errors, index in scored[:count]:
        if errors == 0:
            break
        sample = dataset[index]
        height, width = sample.meta.get("orig_size", sample.image.shape[-2:])
        prediction = predictor.predict_normalized(sample.image, region=Region((height, width)))
        assert isinstance(prediction, InstancePrediction)
        image = read_image(sample.meta["image_path"])[:height, :width]
        entry = per_image[index]
        title = f"{entry['image_id']}: {entry['merges']} merges, {entry['splits']} splits"
        truth = _truth_labels(sample, height, width)
        rows.append((title, image, truth, prediction.label_image[:height, :width]))
    return rows


def write_figures(
    predictor: Predictor, dataset: Any, result: EvaluationResult, writer: RunWriter, folder: str
) -> list[Path]:
    """Draw the report's pictures under ``folder`` of the run; returns the files written."""
    if not writer.enabled:
        return []
    data: dict[str, Any] = dict(result)
    written: list[Path | None] = []
    run_dir = predictor.source[0] if predictor.source is not None else None
    curves = writer.path(f"{folder}/curves.png")
    written.append(
        figures.save_training_curves(curves, _records(run_dir), predictor.task.primary_metric)
    )
    if predictor.task.prediction_type is SemanticPrediction:
        intervals = (data.get("intervals") or {}).get("per_class_iou")
        bars = writer.path(f"{folder}/iou_bars.png")
        written.append(figures.save_iou_bars(bars, data.get("per_class_iou", {}), intervals))
        rows = _gallery_rows(predictor, dataset, data)
        if rows:
            gallery = writer.path(f"{folder}/gallery.png")
            palette, ignore = predictor.info.palette, predictor.ignore_index
            written.append(
                figures.save_gallery(
                    gallery,
                    rows,
                    palette=palette,
                    ignore_index=ignore,
                    class_names=predictor.class_names,
                )
            )
    else:
        ap = writer.path(f"{folder}/ap_by_threshold.png")
        written.append(figures.save_ap_by_threshold(ap, data))
        per_image = (data.get("counting") or {}).get("per_image", [])
        counts = [(int(c["true_count"]), int(c["pred_count"])) for c in per_image]
        written.append(figures.save_count_scatter(writer.path(f"{folder}/counts.png"), counts))
        examples = writer.path(f"{folder}/merges_splits.png")
        rows = _merge_split_rows(predictor, dataset, data)
        if not rows:
            examples.unlink(missing_ok=True)  # an earlier evaluation's must not be shown
        written.append(save_merge_split_examples(examples, rows))
    return [path for path in written if path is not None]
