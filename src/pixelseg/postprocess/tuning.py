"""Tuning the watershed / connected-components thresholds on a validation split.

The score is the matching AP at IoU 0.5 pooled over the split (TP / (TP + FP + FN), TP, FP and
FN summed over images): it punishes missed, spurious, merged and split objects alike.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pixelseg.config import WatershedConfig
from pixelseg.errors import ConfigError
from pixelseg.metrics.matching import matching_scores, pooled_ap50
from pixelseg.postprocess.watershed import (
    WatershedParams,
    apply_postprocess,
    default_postprocess,
    finish_instances,
    seeded_watershed,
)

_DEFAULT_PARAMS = WatershedParams()

_DEFAULT_SETTINGS = WatershedConfig()

#: The grid :func:`tune_watershed` searches when none is given: the config's default grid.
DEFAULT_GRID: dict[str, tuple[Any, ...]] = {
    "interior_threshold": _DEFAULT_SETTINGS.interior_thresholds,
    "foreground_threshold": _DEFAULT_SETTINGS.foreground_thresholds,
    "keep_unseeded": _DEFAULT_SETTINGS.keep_unseeded_values,
}


def _grid_params(base: WatershedParams, grid: Mapping[str, Sequence[Any]]) -> list[WatershedParams]:
    """Every combination of the grid's values applied on top of ``base``."""
    known = {f.name for f in dataclasses.fields(WatershedParams)}
    for key in grid:
        if key not in known:
            raise ConfigError(f"watershed grid: unknown parameter {key!r} (known: {sorted(known)})")
    keys = list(grid)
    return [
        dataclasses.replace(base, **dict(zip(keys, values)))
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def tune_watershed(
    prob_maps: Sequence[np.ndarray],
    true_label_images: Sequence[np.ndarray],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    base: WatershedParams = _DEFAULT_PARAMS,
    distances: Sequence[np.ndarray] | None = None,
) -> tuple[WatershedParams, list[dict[str, Any]]]:
    """Pick post-processing parameters on the val split by a small grid search.

    The score is the matching AP at IoU 0.5 pooled over the split (TP / (TP + FP + FN), TP, FP
    and FN summed over images); ties go to the earlier grid point.

    Args:
        prob_maps: one ``(3, H, W)`` probability map per image.
        true_label_images: one ``(H, W)`` true label image per image.
        grid: parameter name -> values tried; None uses :data:`DEFAULT_GRID`.
        base: values of the parameters the grid does not vary.
        distances: one ``(H, W)`` predicted distance map per image, if any.

    Returns:
        The best parameters and the whole table: one dict per grid point with its parameters,
        ``tp``, ``fp``, ``fn`` and ``matching_ap50_pooled``.
    """
    if len(prob_maps) != len(true_label_images):
        raise ValueError(f"{len(prob_maps)} probability maps for {len(true_label_images)} labels")
    candidates = _grid_params(base, DEFAULT_GRID if grid is None else grid)
    if not candidates:
        raise ConfigError(f"watershed grid: a parameter has no value to try ({dict(grid or {})})")
    # Grid points that differ only in the clean-up share one watershed per image, and images
    # are taken one at a time (their counts summed), so memory does not grow with the split.
    groups: dict[WatershedParams, list[int]] = {}
    for index, params in enumerate(candidates):
        groups.setdefault(_seed_key(params), []).append(index)
    counts = np.zeros((len(candidates), 3), dtype=np.int64)
    for image, (probs, truth) in enumerate(zip(prob_maps, true_label_images)):
        distance = None if distances is None else distances[image]
        for key, members in groups.items():
            labels, foreground = seeded_watershed(probs, params=key, distance=distance)
            for index in members:
                pred = finish_instances(labels, foreground, params=candidates[index])
                found = pooled_ap50([pred], [truth])
                counts[index] += (found["tp"], found["fp"], found["fn"])
    scores = matching_scores(counts[:, 0], counts[:, 1], counts[:, 2])
    table = [
        {
            **params.to_dict(),
            "tp": int(tp),
            "fp": int(fp),
            "fn": int(fn),
            "matching_ap50_pooled": float(score),
        }
        for params, (tp, fp, fn), score in zip(candidates, counts, scores)
    ]
    best_index = int(np.argmax(scores))  # the first of equal scores: the earlier grid point
    return candidates[best_index], table


def _seed_key(params: WatershedParams) -> WatershedParams:
    """``params`` with the clean-up settings (which the watershed itself ignores) fixed."""
    return dataclasses.replace(params, keep_unseeded=True, min_size=0, fill_holes=False)


def tune_postprocess(
    prob_maps: Sequence[np.ndarray],
    true_label_images: Sequence[np.ndarray],
    settings: WatershedConfig,
    *,
    distances: Sequence[np.ndarray] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Grid search of the thresholds on the val split (pooled matching AP at IoU 0.5).

    Returns:
        The best settings dict and the whole table (one row per grid point with ``tp``, ``fp``,
        ``fn`` and ``matching_ap50_pooled``).
    """
    base = default_postprocess(settings)
    if base["method"] == "watershed":
        grid: dict[str, Sequence[Any]] = {"foreground_threshold": settings.foreground_thresholds}
        if base["markers"] == "distance":
            grid["h"] = settings.h_values
        else:
            grid["interior_threshold"] = settings.interior_thresholds
        grid["keep_unseeded"] = settings.keep_unseeded_values
        params = WatershedParams(**{k: v for k, v in base.items() if k != "method"})
        best, table = tune_watershed(
            prob_maps, true_label_images, grid, base=params, distances=distances
        )
        return {"method": "watershed", **best.to_dict()}, table
    table = []
    best_settings, best_score = base, -1.0
    for threshold in settings.foreground_thresholds:
        candidate = {**base, "threshold": float(threshold)}
        preds = (apply_postprocess(probs, None, candidate) for probs in prob_maps)
        row = {**candidate, **pooled_ap50(preds, true_label_images)}
        table.append(row)
        score = row["matching_ap50_pooled"]
        if score > best_score:
            best_settings, best_score = candidate, score
    return best_settings, table
