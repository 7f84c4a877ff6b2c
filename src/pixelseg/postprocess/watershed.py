"""Semantic → instance: split touching objects with a marker-controlled watershed.

The network predicts background / interior / boundary probabilities (and optionally a
distance-to-boundary map). Interiors of touching objects are separated by the boundary class,
so they give one marker per object; the watershed then grows each marker back over the
boundary pixels, inside the foreground, so touching objects come out as separate instances.

Post-processing settings are a plain dict (stored in ``run.json`` and ``postprocess.json``):
``{"method": "watershed", **WatershedParams fields}`` or ``{"method": "connected_components",
"threshold", "min_size"}`` — the naive baseline, where touching objects merge. Their tuning on
a validation split is in :mod:`pixelseg.postprocess.tuning`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from pixelseg.config import WatershedConfig
from pixelseg.postprocess.masks import fill_holes, relabel_sequential, remove_small_objects

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2


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
    labels, foreground = seeded_watershed(probs, params=params, distance=distance)
    return finish_instances(labels, foreground, params=params)


def seeded_watershed(
    probs: np.ndarray,
    *,
    params: WatershedParams = WatershedParams(),
    distance: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The watershed of :func:`split_instances` before its clean-up: ``(labels, foreground)``.

    Only the markers and thresholds of ``params`` matter here, so a threshold search computes
    it once for every ``keep_unseeded`` / ``min_size`` / ``fill_holes`` it tries
    (:func:`finish_instances`).
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
    return watershed(surface, markers, mask=foreground), foreground


def finish_instances(
    labels: np.ndarray, foreground: np.ndarray, *, params: WatershedParams = WatershedParams()
) -> np.ndarray:
    """The clean-up of :func:`split_instances` after :func:`seeded_watershed`: unseeded
    foreground kept or dropped, holes filled, small objects removed, ids ``1..N``."""
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


def default_postprocess(settings: WatershedConfig) -> dict[str, Any]:
    """Untuned post-processing settings (used for validation during training)."""
    if settings.postprocess == "watershed":
        params = WatershedParams(
            markers="distance" if settings.markers == "distance" else "interior",
            min_size=settings.min_size,
            fill_holes=settings.fill_holes,
        )
        return {"method": "watershed", **params.to_dict()}
    return {"method": "connected_components", "threshold": 0.5, "min_size": settings.min_size}


def foreground_probability(probs: np.ndarray) -> np.ndarray:
    """``(H, W)`` object probability from ``(2, H, W)`` or ``(3, H, W)`` class probabilities."""
    return probs[1] if probs.shape[0] == 2 else 1.0 - probs[0]


def apply_postprocess(
    probs: np.ndarray, distance: np.ndarray | None, settings: dict[str, Any]
) -> np.ndarray:
    """Instance label image ``(H, W)`` int32 from ``(K, H, W)`` class probabilities.

    Args:
        probs: class probabilities (background / interior / boundary, or background / object).
        distance: ``(H, W)`` predicted distance (distance markers only), or None.
        settings: the post-processing dict (see the module docstring).
    """
    params = {k: v for k, v in settings.items() if k != "method"}
    if settings["method"] == "watershed":
        return split_instances(probs, params=WatershedParams(**params), distance=distance)
    return connected_components_instances(
        foreground_probability(probs),
        threshold=float(params["threshold"]),
        min_size=int(params["min_size"]),
    )


def suppress_ignored(probs: np.ndarray, ignored: np.ndarray) -> np.ndarray:
    """Set ``(K, H, W)`` probabilities to certain background where ``ignored`` ``(H, W)`` is set.

    Ignored pixels (COCO crowd regions, padding) hold no object a metric could count, so the
    post-processing must not find one there.
    """
    if not ignored.any():
        return probs
    probs = probs.copy()
    probs[:, ignored] = 0.0
    probs[0, ignored] = 1.0
    return probs


def mean_per_object(values: np.ndarray, label_image: np.ndarray) -> dict[int, float]:
    """Mean of ``values`` ``(H, W)`` over each object of ``label_image``, by label id."""
    ids = np.unique(label_image)
    ids = ids[ids != 0]
    if ids.size == 0:
        return {}
    means = ndimage.mean(values, labels=label_image, index=ids)
    return {int(i): float(m) for i, m in zip(ids, np.atleast_1d(means))}


def object_scores(probs: np.ndarray, label_image: np.ndarray) -> dict[int, float]:
    """Mean object probability of each object (its confidence for COCO AP), by label id."""
    return mean_per_object(foreground_probability(probs), label_image)


def params_summary(settings: dict[str, Any]) -> str:
    """One line describing post-processing settings, for logs and reports."""
    keys = [f.name for f in dataclasses.fields(WatershedParams)] + ["threshold"]
    shown = ", ".join(f"{k}={settings[k]}" for k in keys if k in settings)
    return f"{settings['method']} ({shown})"
