"""Training targets of the watershed task, derived from instance labels.

:func:`watershed_targets` gives the three-class map, the U-Net border weight map and the
optional distance map of one label image. The border weight is the sum of a class-balancing
term, which depends on the class frequencies of whatever image the loss sees
(:func:`class_balance_weights`), and a gap term, which depends only on the objects around a
pixel (:func:`gap_weights`). :func:`full_image_targets` computes, once per training image, the
parts that depend only on the label image (class map, gap term, distance) for
:mod:`pixelseg.tasks.watershed.data` to cache and crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from skimage.segmentation import find_boundaries

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2

# Beyond d1 + d2 = 6 sigma the gap term is below w0 * exp(-18): treat it as exactly zero, so
# each object's distance transform only needs a window of 6 sigma around it.
_GAP_CUTOFF_SIGMAS = 6.0


def boundary_mask(instance_labels: np.ndarray, *, boundary_width: int = 2) -> np.ndarray:
    """Object pixels within ``boundary_width`` pixels of another label (background included).

    The first ring is ``find_boundaries(mode="inner")``; each further ring is the inner
    boundary of what is left once the previous rings are peeled off.

    Args:
        instance_labels: ``(H, W)`` integer label image, 0 = background.
        boundary_width: rings of boundary pixels.

    Returns:
        ``(H, W)`` bool mask.
    """
    remaining = np.asarray(instance_labels).copy()
    boundary = np.zeros(remaining.shape, dtype=bool)
    for _ in range(boundary_width):
        ring = find_boundaries(remaining, mode="inner") & (remaining > 0)
        boundary |= ring
        remaining[ring] = 0
    return boundary


def _class_balance(class_map: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """``(H, W)`` weight ``N / (K * n_c)`` of each pixel's class (K = classes present)."""
    counts = np.bincount(class_map.ravel(), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = class_map.size / (present.sum() * counts[present])
    return weights[class_map]


def class_balance_weights(class_map: torch.Tensor, num_classes: int = 3) -> torch.Tensor:
    """``(H, W)`` float64 weight ``N / (K * n_c)`` of each pixel's class (K = classes present).

    Args:
        class_map: ``(H, W)`` int64 classes ``0..num_classes - 1``.
        num_classes: classes of the map.
    """
    counts = torch.bincount(class_map.flatten(), minlength=num_classes).double()
    present = counts > 0
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[present] = class_map.numel() / (present.sum() * counts[present])
    return weights[class_map]


def _two_nearest_distances(
    instance_labels: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each pixel to the nearest and second-nearest object (inf beyond cutoff)."""
    height, width = instance_labels.shape
    nearest = np.full((height, width), np.inf)
    second = np.full((height, width), np.inf)
    margin = math.ceil(cutoff)
    for index, window in enumerate(ndimage.find_objects(instance_labels)):
        if window is None:
            continue
        rows = slice(max(window[0].start - margin, 0), min(window[0].stop + margin, height))
        cols = slice(max(window[1].start - margin, 0), min(window[1].stop + margin, width))
        distance = ndimage.distance_transform_edt(instance_labels[rows, cols] != index + 1)
        distance[distance > cutoff] = np.inf
        near, sec = nearest[rows, cols], second[rows, cols]
        # Keep the two smallest distances seen so far, per pixel.
        sec[...] = np.minimum(sec, np.maximum(near, distance))
        near[...] = np.minimum(near, distance)
    return nearest, second


def border_weight_map(
    instance_labels: np.ndarray, class_map: np.ndarray, *, w0: float = 10.0, sigma: float = 5.0
) -> np.ndarray:
    """U-Net border weight map (Ronneberger et al. 2015, eq. 2).

    ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))`` on background pixels, with
    ``w_c`` the class-balancing weight of the pixel's class in ``class_map`` and ``d1``, ``d2``
    the distances to the nearest and second-nearest object.

    Args:
        instance_labels: ``(H, W)`` integer label image, 0 = background.
        class_map: ``(H, W)`` int class of each pixel (background / interior / boundary).
        w0: weight of the gap term.
        sigma: width of the gap term, in pixels.

    Returns:
        ``(H, W)`` float32 weights.
    """
    return (_class_balance(class_map) + _gap(instance_labels, w0, sigma)).astype(np.float32)


def _gap(instance_labels: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """The gap term in float64, 0 on object pixels and beyond the cutoff."""
    gap = np.zeros(instance_labels.shape, dtype=np.float64)
    if instance_labels.max(initial=0) > 0 and w0 > 0:
        d1, d2 = _two_nearest_distances(instance_labels, _GAP_CUTOFF_SIGMAS * sigma)
        background = instance_labels == 0
        gap[background] = w0 * np.exp(-((d1[background] + d2[background]) ** 2) / (2 * sigma**2))
    return gap


def gap_weights(instance_labels: np.ndarray, *, w0: float = 10.0, sigma: float = 5.0) -> np.ndarray:
    """The gap term of the U-Net border weight: ``w0 * exp(-(d1 + d2)^2 / (2 sigma^2))``.

    ``d1``, ``d2`` are the distances to the nearest and second-nearest object, taken as
    infinite beyond ``6 sigma`` (the term is then below ``w0 * exp(-18)``). It depends only on
    the objects within ``6 sigma`` of a pixel, so on a crop it equals the full image's at
    pixels more than ``6 sigma`` inside the crop.

    Args:
        instance_labels: ``(H, W)`` integer label image, 0 = background.
        w0: weight of the gap term.
        sigma: its width in pixels.

    Returns:
        ``(H, W)`` float32, 0 on object pixels.
    """
    return _gap(np.asarray(instance_labels).astype(np.int64, copy=False), w0, sigma).astype(
        np.float32
    )


def normalized_distance(instance_labels: np.ndarray) -> np.ndarray:
    """Distance of each object pixel to its object's boundary, scaled to [0, 1] per object.

    Args:
        instance_labels: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``(H, W)`` float32; 0 on background, 1 at each object's innermost pixel.
    """
    result = np.zeros(instance_labels.shape, dtype=np.float32)
    for index, window in enumerate(ndimage.find_objects(instance_labels)):
        if window is None:
            continue
        # One pixel of padding so that the image border counts as the object's edge.
        mask = np.pad(instance_labels[window] == index + 1, 1)
        distance = ndimage.distance_transform_edt(mask)[1:-1, 1:-1]
        peak = distance.max()
        if peak > 0:
            inside = mask[1:-1, 1:-1]
            result[window][inside] = (distance[inside] / peak).astype(np.float32)
    return result


def watershed_targets(
    instance_labels: np.ndarray,
    *,
    boundary_width: int = 2,
    w0: float = 10.0,
    sigma: float = 5.0,
    with_distance: bool = False,
) -> dict[str, np.ndarray]:
    """Targets of the watershed task from one instance label image.

    Args:
        instance_labels: ``(H, W)`` integer label image, 0 = background.
        boundary_width: width of the boundary class inside each object, in pixels.
        w0: weight of the U-Net gap term.
        sigma: width of the U-Net gap term, in pixels.
        with_distance: also return the per-object normalised distance map.

    Returns:
        ``"class_map"`` ``(H, W)`` int64 (0 background, 1 interior, 2 boundary),
        ``"weight_map"`` ``(H, W)`` float32, and ``"distance"`` ``(H, W)`` float32 in [0, 1]
        when ``with_distance``.
    """
    labels = np.asarray(instance_labels)
    if labels.ndim != 2:
        raise ValueError(f"instance labels must be (H, W), got {labels.shape}")
    labels = labels.astype(np.int64, copy=False)
    class_map = np.where(labels > 0, INTERIOR, BACKGROUND).astype(np.int64)
    class_map[boundary_mask(labels, boundary_width=boundary_width)] = BOUNDARY
    targets = {
        "class_map": class_map,
        "weight_map": border_weight_map(labels, class_map, w0=w0, sigma=sigma),
    }
    if with_distance:
        targets["distance"] = normalized_distance(labels)
    return targets


@dataclass
class FullImageTargets:
    """What the watershed targets of one training image need from its label image alone.

    Attributes:
        class_map: ``(H, W)`` uint8 background / interior / boundary.
        gap: ``(H, W)`` float32 gap term of the border weights (:func:`gap_weights`).
        distance: ``(H, W)`` float32 normalised distance, or ``None``.
    """

    class_map: np.ndarray
    gap: np.ndarray
    distance: np.ndarray | None

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        extra = 0 if self.distance is None else self.distance.nbytes
        return int(self.class_map.nbytes + self.gap.nbytes + extra)


def full_image_targets(
    instance_labels: np.ndarray,
    *,
    boundary_width: int = 2,
    w0: float = 10.0,
    sigma: float = 5.0,
    with_distance: bool = False,
) -> FullImageTargets:
    """The label-image-only parts of the targets of a whole image (see the module docstring)."""
    labels = np.asarray(instance_labels).astype(np.int64, copy=False)
    class_map = np.where(labels > 0, INTERIOR, BACKGROUND).astype(np.uint8)
    class_map[boundary_mask(labels, boundary_width=boundary_width)] = BOUNDARY
    distance = normalized_distance(labels) if with_distance else None
    return FullImageTargets(class_map, gap_weights(labels, w0=w0, sigma=sigma), distance)
