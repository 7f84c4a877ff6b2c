"""The pictures of an evaluation report: IoU bars, training curves, AP by threshold, counts, and
a gallery of the best, median and worst images (PNG, written atomically)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelseg.files import atomic_write

#: The report's pictures, in the order a page shows them (the evaluation writes them).
FIGURES = (
    "iou_bars.png",
    "gallery.png",
    "ap_by_threshold.png",
    "counts.png",
    "merges_splits.png",
    "curves.png",
)
#: Error-map colours: correct; wrong where the truth is class 0 (usually background: a false
#: positive of the predicted class); wrong where the truth is another class (it was missed);
#: unlabelled.
CORRECT, FALSE_POSITIVE, FALSE_NEGATIVE, VOID = (
    (40, 40, 40),
    (230, 60, 40),
    (40, 120, 230),
    (0, 0, 0),
)


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported when first drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    plt = pyplot()
    result = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return result


def save_iou_bars(
    path: str | Path, per_class_iou: Mapping[str, float], intervals: Mapping[str, Any] | None
) -> Path:
    """Per-class IoU as horizontal bars (absent classes shown as such), with the bootstrap
    interval as an error bar where known."""
    plt = pyplot()
    names = list(per_class_iou)
    values = [per_class_iou[n] for n in names]
    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.35 * len(names) + 1)))
    shown = [0.0 if v is None or math.isnan(v) else 100 * v for v in values]
    ax.barh(range(len(names)), shown, color="#4a7ab5")
    for k, name in enumerate(names):
        band = (intervals or {}).get(name)
        if band and not any(math.isnan(b) for b in band):
            ax.plot([100 * band[0], 100 * band[1]], [k, k], color="black", linewidth=1.5)
        if values[k] is None or math.isnan(values[k]):
            ax.text(1, k, "absent", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("IoU % (line: 95 % interval over images)")
    ax.set_title("per-class IoU")
    fig.tight_layout()
    return save_figure(fig, path)


def save_training_curves(
    path: str | Path, records: Sequence[Mapping[str, Any]], primary: str
) -> Path | None:
    """Training loss and the validation ``primary`` metric against wall-clock seconds, from
    ``metrics.jsonl``'s records; ``None`` when there is nothing to draw."""
    losses = [(r["train_seconds"], r["train_loss"]) for r in records if r.get("train_loss")]
    key = f"val_{primary}"
    scores = [(r["train_seconds"], r[key]) for r in records if r.get(key) is not None]
    if not losses and not scores:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if losses:
        ax.plot(*zip(*losses), color="#c05030", label="train loss")
        ax.set_ylabel("train loss")
    ax.set_xlabel("wall-clock seconds")
    if scores:
        other = ax.twinx()
        other.plot(*zip(*scores), "o-", color="#3060a0", label=f"val {primary}")
        other.set_ylabel(f"val {primary}")
    ax.set_title("training")
    fig.tight_layout()
    return save_figure(fig, path)


def error_map(truth: np.ndarray, prediction: np.ndarray, ignore_index: int) -> np.ndarray:
    """``(H, W, 3)`` uint8: correct pixels dark, wrong ones red where the truth is class 0
    (with class 0 the background: false positives) and blue where it is another class (that
    class missed); unlabelled truth black."""
    out = np.empty((*truth.shape, 3), np.uint8)
    out[:] = CORRECT
    wrong = (truth != prediction) & (truth != ignore_index)
    out[wrong & (truth == 0)] = FALSE_POSITIVE
    out[wrong & (truth != 0)] = FALSE_NEGATIVE
    out[truth == ignore_index] = VOID
    return out


def save_gallery(
    path: str | Path,
    rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    *,
    palette: list[list[int]],
    ignore_index: int,
    class_names: Sequence[str] = ("class 0",),
) -> Path:
    """One row per image: image | truth | prediction | error map.

    Args:
        rows: ``(title, image (H, W, C) as stored, truth (H, W), prediction (H, W))``.
        palette: the class colours.
        ignore_index: unlabelled truth pixels (black in every panel).
        class_names: the classes (the error map's legend names class 0).
    """
    from pixelseg.report.figures import colorize, display_image

    plt = pyplot()
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3 * len(rows)), squeeze=False)
    for row, (title, image, truth, prediction) in zip(axes, rows):
        panels = [
            display_image(image),
            colorize(truth, palette, ignore_index),
            colorize(prediction, palette, ignore_index),
            error_map(truth, prediction, ignore_index),
        ]
        legend = f"errors\nred: true {class_names[0]}; blue: other classes"
        names = [title, "truth", "prediction", legend]
        for ax, panel, name in zip(row, panels, names):
            ax.imshow(panel)
            ax.set_title(name, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, path)


def save_ap_by_threshold(path: str | Path, result: Mapping[str, Any]) -> Path | None:
    """Matching AP (pooled and per image) at each IoU threshold; ``None`` without any."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    drew = False
    for key, label in (("matching_ap_pooled", "pooled"), ("matching_ap_per_image", "per image")):
        per = (result.get(key) or {}).get("per_threshold") or {}
        if per:
            ax.plot([float(t) for t in per], [100 * float(v) for v in per.values()], "o-",
                    label=label)  # fmt: skip
            drew = True
    if not drew:
        plt.close(fig)
        return None
    ax.set_xlabel("IoU threshold")
    ax.set_ylabel("matching AP %")
    ax.set_ylim(0, 100)
    ax.legend()
    ax.set_title("AP at each IoU threshold")
    fig.tight_layout()
    return save_figure(fig, path)


def save_count_scatter(path: str | Path, counts: Sequence[tuple[int, int]]) -> Path | None:
    """True against predicted object count per image, the diagonal drawn; ``None`` if empty."""
    if not counts:
        return None
    plt = pyplot()
    true, predicted = np.asarray(counts, dtype=np.float64).T
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    top = max(1.0, float(max(true.max(), predicted.max())))
    ax.plot([0, top], [0, top], color="#999", linewidth=1)
    ax.scatter(true, predicted, s=12, color="#3060a0")
    ax.set_xlabel("true objects")
    ax.set_ylabel("predicted objects")
    ax.set_title("counts per image (above the line: splits)")
    fig.tight_layout()
    return save_figure(fig, path)
