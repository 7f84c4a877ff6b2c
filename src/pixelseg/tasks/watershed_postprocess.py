"""Post-processing of the watershed task: network maps to instance label images, and tuning.

Post-processing settings are a plain dict (stored in ``run.json`` and ``postprocess.json``):
``{"method": "watershed", **WatershedParams fields}`` or ``{"method": "connected_components",
"threshold", "min_size"}`` — the naive baseline, where touching objects merge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from pixelseg.config import WatershedConfig
from pixelseg.metrics.matching import pooled_ap50
from pixelseg.postprocess.watershed import (
    WatershedParams,
    connected_components_instances,
    split_instances,
    tune_watershed,
)

PAD_MULTIPLE = 32


def settings_from_dict(raw: dict[str, Any]) -> WatershedConfig:
    """A :class:`WatershedConfig` from its JSON form (lists back to tuples)."""
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return WatershedConfig(**values)


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


def split_outputs(
    outputs: torch.Tensor, *, num_classes: int, distance_head: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class logits ``(N, K, H, W)`` and the distance ``(N, H, W)`` in [0, 1] (or None)."""
    logits = outputs[:, :num_classes]
    distance = torch.sigmoid(outputs[:, num_classes].float()) if distance_head else None
    return logits, distance


@torch.no_grad()
def predict_maps(
    model: nn.Module,
    image: torch.Tensor,
    *,
    num_classes: int,
    distance_head: bool,
    size: tuple[int, int] | None = None,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities and distance of one normalised image.

    Args:
        model: the trained model, in eval mode, on its device.
        image: ``(C, H, W)`` normalised image (padded to a multiple of 32 here if needed).
        num_classes: class channels of the output (the distance channel follows).
        distance_head: whether the model has the distance channel.
        size: ``(height, width)`` to crop the maps to (the image's size before padding).
        autocast: mixed-precision context.

    Returns:
        ``(K, h, w)`` float32 probabilities and ``(h, w)`` float32 distance or None.
    """
    device = next(model.parameters()).device
    height, width = size if size is not None else tuple(image.shape[-2:])
    pad = (0, (-image.shape[-1]) % PAD_MULTIPLE, 0, (-image.shape[-2]) % PAD_MULTIPLE)
    batch = F.pad(image[None].float(), pad).to(device)
    with autocast():
        outputs = model(batch)
    logits, distance = split_outputs(
        outputs.float(), num_classes=num_classes, distance_head=distance_head
    )
    probs = logits[0, :, :height, :width].softmax(0).cpu().numpy()
    if distance is None:
        return probs, None
    return probs, distance[0, :height, :width].cpu().numpy()


def params_summary(settings: dict[str, Any]) -> str:
    """One line describing post-processing settings, for logs and reports."""
    keys = [f.name for f in dataclasses.fields(WatershedParams)] + ["threshold"]
    shown = ", ".join(f"{k}={settings[k]}" for k in keys if k in settings)
    return f"{settings['method']} ({shown})"
