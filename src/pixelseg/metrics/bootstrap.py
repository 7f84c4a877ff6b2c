"""Bootstrap confidence intervals over images: how much a score would move on another sample.

A split of 20 images says little about the next 20. The interval resamples the *images* (with
replacement, the same number as evaluated, ``resamples`` times, a fixed seed so a report is
reproducible) and recomputes the statistic exactly as the headline does — the dataset-level
mIoU from the summed confusion matrices of the drawn images, each class's IoU, the pooled
matching AP50 from the drawn images' TP/FP/FN counts — then reports the percentile interval
(95 % by default). Intervals that overlap do not show a difference; one that excludes the
other's point estimate is a better sign than a single number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Resamples per interval and the generator's seed (fixed: the same report every time).
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def _weights(count: int, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, count)`` how often each image is drawn in each resample."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, count, size=(resamples, count))
    weights = np.zeros((resamples, count), dtype=np.float64)
    np.add.at(weights, (np.arange(resamples)[:, None], drawn), 1.0)
    return weights


def _interval(values: np.ndarray, level: float) -> list[float]:
    """The percentile interval of ``values`` (NaN resamples left out), or NaNs."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [math.nan, math.nan]
    tail = 100 * (1 - level) / 2
    return [float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))]


def semantic_intervals(
    confusions: np.ndarray,
    class_names: Sequence[str],
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Any]:
    """Intervals for the dataset-level mIoU and each class's IoU.

    Args:
        confusions: ``(N, C, C)`` per-image confusion matrices (rows truth, columns prediction).
        class_names: the ``C`` names.

    Returns:
        ``miou``: ``[low, high]``; ``per_class_iou``: name -> ``[low, high]`` (NaN for a class
        absent from every resample); ``resamples``, ``level``, ``seed``, ``images``.
    """
    confusions = np.asarray(confusions, dtype=np.float64)
    count = confusions.shape[0]
    out: dict[str, Any] = {"resamples": resamples, "level": level, "seed": seed, "images": count}
    if count == 0:
        out["miou"] = [math.nan, math.nan]
        out["per_class_iou"] = {name: [math.nan, math.nan] for name in class_names}
        return out
    totals = np.einsum("rn,nij->rij", _weights(count, resamples, seed), confusions)
    tp = np.diagonal(totals, axis1=1, axis2=2)
    union = totals.sum(2) + totals.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample with no class present
        iou = np.where(union > 0, tp / union, np.nan)
        miou = np.nanmean(iou, axis=1)
    out["miou"] = _interval(miou, level)
    out["per_class_iou"] = {name: _interval(iou[:, k], level) for k, name in enumerate(class_names)}
    return out


def pooled_ap50_interval(
    counts: np.ndarray,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    level: float = LEVEL,
) -> dict[str, Any]:
    """The interval of the pooled matching AP50, ``TP / (TP + FP + FN)`` summed over images.

    Args:
        counts: ``(N, 3)`` per-image TP, FP and FN at IoU 0.5.
    """
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    out: dict[str, Any] = {"resamples": resamples, "level": level, "seed": seed}
    out["images"] = counts.shape[0]
    if counts.shape[0] == 0:
        out["ap50_pooled"] = [math.nan, math.nan]
        return out
    totals = _weights(counts.shape[0], resamples, seed) @ counts
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = totals[:, 0] / totals.sum(1)
    out["ap50_pooled"] = _interval(ap, level)
    return out
