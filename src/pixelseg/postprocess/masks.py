"""Instance label images and instance mask stacks: conversions and clean-up.

A label image ``(H, W)`` holds one integer id per object (0 = background); a mask stack
``(N, H, W)`` holds one boolean mask per object and may overlap (Mask R-CNN output).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential as _relabel_sequential

from pixelseg.structures import InstancePrediction


def label_image_to_masks(label_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a label image into one boolean mask per object.

    Args:
        label_image: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``masks`` ``(N, H, W)`` bool and ``labels`` ``(N,)`` int64, the id of each mask,
        ascending.
    """
    labels = np.unique(label_image)
    labels = labels[labels != 0].astype(np.int64)
    masks = label_image[None, :, :] == labels[:, None, None]
    return masks, labels


def masks_to_label_image(masks: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """Paint a mask stack into a label image; where masks overlap the higher score wins.

    Args:
        masks: ``(N, H, W)`` boolean masks.
        scores: ``(N,)`` confidence of each mask; None gives later masks priority.

    Returns:
        ``(H, W)`` int32 label image where mask ``i`` has label ``i + 1`` (a mask fully hidden
        by higher-scoring ones leaves no pixel).
    """
    label_image = np.zeros(masks.shape[1:], dtype=np.int32)
    order = np.arange(len(masks)) if scores is None else np.argsort(scores, kind="stable")
    # Paint the lowest score first so that the highest score is painted last and wins.
    for index in order:
        label_image[masks[index]] = index + 1
    return label_image


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes around masks, in pixel-edge coordinates.

    Args:
        masks: ``(N, H, W)`` boolean masks.

    Returns:
        ``(N, 4)`` float32 boxes ``(x1, y1, x2, y2)`` with ``x2``/``y2`` exclusive (a one-pixel
        mask at column 3 spans ``x1=3, x2=4``, as COCO's ``[x, y, w, h]`` with ``w=1``); an
        empty mask gives zeros.
    """
    boxes = np.zeros((len(masks), 4), dtype=np.float32)
    for index, mask in enumerate(masks):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size:
            boxes[index] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def label_image_to_boxes(label_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tight boxes of every object of a label image (one pass, no per-object masks).

    Args:
        label_image: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``labels`` ``(N,)`` int64 and ``boxes`` ``(N, 4)`` float32 ``(x1, y1, x2, y2)``, ``x2``
        and ``y2`` exclusive as in :func:`masks_to_boxes`.
    """
    slices = ndimage.find_objects(label_image.astype(np.int64, copy=False))
    labels, boxes = [], []
    for index, window in enumerate(slices):
        if window is not None:
            labels.append(index + 1)
            boxes.append((window[1].start, window[0].start, window[1].stop, window[0].stop))
    return np.asarray(labels, dtype=np.int64), np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def remove_small_objects(label_image: np.ndarray, min_size: int) -> np.ndarray:
    """Set objects of fewer than ``min_size`` pixels to background (ids are kept).

    Args:
        label_image: ``(H, W)`` integer label image, 0 = background.
        min_size: smallest object size kept, in pixels.

    Returns:
        A new label image of the same dtype.
    """
    if min_size <= 1:
        return label_image.copy()
    areas = np.bincount(label_image.ravel().astype(np.int64))
    too_small = areas < min_size
    too_small[0] = False
    result = label_image.copy()
    result[too_small[label_image]] = 0
    return result


def fill_holes(label_image: np.ndarray) -> np.ndarray:
    """Fill holes inside each object (background enclosed by one object joins it).

    Args:
        label_image: ``(H, W)`` integer label image, 0 = background.

    Returns:
        A new label image of the same dtype; pixels of other objects are never overwritten.
    """
    result = label_image.copy()
    if label_image.size == 0:
        return result
    # Only background that no 4-connected background path links to the image border can be a
    # hole (the fill's own connectivity), and an object's holes lie in its bounding box: objects
    # whose box holds none are skipped, with the same result (most objects, most images).
    pockets, count = ndimage.label(label_image == 0)
    edge = np.concatenate([pockets[0], pockets[-1], pockets[:, 0], pockets[:, -1]])
    enclosed = np.ones(count + 1, dtype=bool)
    enclosed[0] = False
    enclosed[edge] = False
    if not enclosed.any():
        return result
    inside = enclosed[pockets]
    for index, window in enumerate(ndimage.find_objects(label_image.astype(np.int64, copy=False))):
        if window is None or not inside[window].any():
            continue
        crop = label_image[window]
        filled = ndimage.binary_fill_holes(crop == index + 1)
        result[window][filled & (crop == 0)] = index + 1
    return result


def relabel_sequential(label_image: np.ndarray) -> np.ndarray:
    """Renumber objects ``1..N`` in order of their old ids.

    Args:
        label_image: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``(H, W)`` int32 label image.
    """
    relabeled, _, _ = _relabel_sequential(label_image.astype(np.int64, copy=False))
    return relabeled.astype(np.int32)


def instance_prediction(
    label_image: np.ndarray,
    scores: Mapping[int, float] | np.ndarray,
    labels: np.ndarray | None = None,
    *,
    detections: Any = None,
    class_probs: np.ndarray | None = None,
) -> InstancePrediction:
    """A typed :class:`~pixelseg.structures.InstancePrediction` of a label image ``1..N``.

    Args:
        label_image: ``(H, W)`` objects numbered ``1..N`` without gaps.
        scores: confidence per object: a dict by label id, or ``(N,)`` in label order.
        labels: ``(N,)`` 1-based classes (default: all 1).
        detections: the detector's raw detections, if any.
        class_probs: the semantic net's class probabilities, if any.
    """
    label_image = label_image.astype(np.int32, copy=False)
    count = int(label_image.max(initial=0))
    if isinstance(scores, Mapping):
        score_array = np.asarray([scores.get(k, 1.0) for k in range(1, count + 1)], np.float32)
    else:
        score_array = np.asarray(scores, dtype=np.float32).reshape(count)
    boxes = np.zeros((count, 4), dtype=np.float32)
    ids, found = label_image_to_boxes(label_image)
    boxes[ids - 1] = found
    return InstancePrediction(
        label_image=label_image,
        scores=score_array,
        labels=np.ones(count, np.int64) if labels is None else np.asarray(labels, np.int64),
        boxes=boxes,
        detections=detections,
        class_probs=class_probs,
    )
