"""Semantic → instance: split touching objects with a marker-controlled watershed.

The network predicts background / interior / boundary probabilities (and optionally a
distance-to-boundary map). Interiors of touching objects are separated by the boundary class,
so they give one marker per object; the watershed then grows each marker back over the
boundary pixels, inside the foreground, so touching objects come out as separate instances.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from pixelseg.errors import ConfigError
from pixelseg.metrics.matching import pooled_ap50
from pixelseg.postprocess.masks import fill_holes, relabel_sequential, remove_small_objects

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2

#: The grid :func:`tune_watershed` searches when none is given.
DEFAULT_GRID: dict[str, tuple[Any, ...]] = {
    "interior_threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
    "foreground_threshold": (0.4, 0.5, 0.6),
}


@dataclass(frozen=True)
class WatershedParams:
    """Post-processing parameters (tuned on the val split, stored in the run directory).

    Attributes:
        markers: ``"interior"`` (connected components of interior prob > interior_threshold)
            or ``"distance"`` (h-maxima of the predicted distance map).
        interior_threshold: interior probability a marker pixel needs.
        foreground_threshold: interior + boundary probability a foreground pixel needs.
        h: height of the h-maxima, in the units of the distance map (per-object [0, 1]).
        min_size: objects with fewer pixels are removed.
        fill_holes: fill holes inside each object.
        keep_unseeded: foreground components without a marker become objects of their own
            (instead of being lost).
    """

    markers: Literal["interior", "distance"] = "interior"
    interior_threshold: float = 0.5
    foreground_threshold: float = 0.5
    h: float = 0.2
    min_size: int = 10
    fill_holes: bool = True
    keep_unseeded: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON in the run directory)."""
        return dataclasses.asdict(self)


def split_instances(
    probs: np.ndarray,
    *,
    params: WatershedParams = WatershedParams(),
    distance: np.ndarray | None = None,
) -> np.ndarray:
    """Instance label image from class probabilities by marker-controlled watershed.

    Args:
        probs: ``(C, H, W)`` probabilities with classes background / interior / boundary
            (``C == 3``).
        params: post-processing parameters.
        distance: ``(H, W)`` predicted distance to the object boundary; needed when
            ``params.markers == "distance"``.

    Returns:
        ``(H, W)`` int32 label image, objects numbered ``1..N``.
    """
    if probs.ndim != 3 or probs.shape[0] != 3:
        raise ValueError(f"probs must be (3, H, W) background/interior/boundary, got {probs.shape}")
    interior = probs[INTERIOR]
    foreground = (probs[INTERIOR] + probs[BOUNDARY]) > params.foreground_threshold
    if params.markers == "distance":
        if distance is None:
            raise ValueError("markers='distance' needs the predicted distance map")
        peaks = h_maxima(np.where(foreground, distance, 0).astype(np.float64), params.h)
        markers, _ = ndimage.label(peaks.astype(bool) & foreground)
        surface = -distance
    elif params.markers == "interior":
        markers, _ = ndimage.label((interior > params.interior_threshold) & foreground)
        surface = 1.0 - interior
    else:
        raise ValueError(f"unknown marker source {params.markers!r}")
    labels = watershed(surface, markers, mask=foreground)
    if params.keep_unseeded:
        unseeded, count = ndimage.label(foreground & (labels == 0))
        if count:
            labels = np.where(unseeded > 0, unseeded + labels.max(), labels)
    if params.fill_holes:
        labels = fill_holes(labels)
    labels = remove_small_objects(labels, params.min_size)
    return relabel_sequential(labels)


def connected_components_instances(
    foreground_prob: np.ndarray, *, threshold: float = 0.5, min_size: int = 0
) -> np.ndarray:
    """The naive baseline: every connected foreground blob is one object (touching ones merge).

    Args:
        foreground_prob: ``(H, W)`` foreground probability.
        threshold: probability a foreground pixel needs.
        min_size: blobs with fewer pixels are removed.

    Returns:
        ``(H, W)`` int32 label image, objects numbered ``1..N``.
    """
    labels, _ = ndimage.label(foreground_prob > threshold)
    return relabel_sequential(remove_small_objects(labels, min_size))


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
    base: WatershedParams = WatershedParams(),
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
    table: list[dict[str, Any]] = []
    best_index, best_score = 0, -1.0
    for index, params in enumerate(candidates):
        preds = (
            split_instances(
                probs, params=params, distance=None if distances is None else distances[i]
            )
            for i, probs in enumerate(prob_maps)
        )
        row = {**params.to_dict(), **pooled_ap50(preds, true_label_images)}
        table.append(row)
        score = row["matching_ap50_pooled"]
        if score > best_score:
            best_index, best_score = index, score
    return candidates[best_index], table
