"""How often a semantic prediction joins separate objects into one blob (the merge rate).

A semantic map labels pixels, not objects: two objects of one class that touch, or nearly
touch, become one connected blob, and counting blobs undercounts them. Per class, the truth's
connected components (8-connected) are its objects; a predicted component that covers at
least half of each of two or more of them merges them (the rule of
:func:`~pixelseg.metrics.matching.merge_split_flags`). The merge rate of a class is the fraction
of its true objects so merged; beside it, the fraction of true objects within ``gap`` pixels of
another one says whether the data's objects touch at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from pixelseg.metrics.matching import label_image_overlap, merge_split_flags

#: Two objects with at most this many background pixels between them count as touching.
TOUCH_GAP = 2
#: A class counts objects when its images hold at least this many on average...
MIN_OBJECTS_PER_IMAGE = 2.0
#: ...and the split at least this many in all.
MIN_OBJECTS = 10
#: The data's objects touch when at least this fraction lies within TOUCH_GAP of another one.
TOUCHING_FRACTION = 0.1

_EIGHT = np.ones((3, 3), dtype=bool)


def near_another(labels: np.ndarray, gap: int = TOUCH_GAP) -> int:
    """How many objects of a label image (0 = none) have another within ``gap`` background
    pixels (chessboard distance ``gap + 1``)."""
    size = 2 * gap + 3
    highest = ndimage.maximum_filter(labels, size=size, mode="constant", cval=0)
    lowest = ndimage.minimum_filter(
        np.where(labels > 0, labels, np.iinfo(labels.dtype).max), size=size, mode="nearest"
    )
    inside = labels > 0
    other = inside & ((highest != labels) | (lowest != labels))
    return int(np.unique(labels[other]).size)


class MergeRate:
    """Accumulates, per class, true objects, those near another, and those the prediction
    merged.

    Args:
        class_names: the classes, in index order.
        ignore_index: label of unlabelled pixels (neither object nor prediction there).
        gap: the touching distance in pixels.
    """

    def __init__(
        self, class_names: Sequence[str], *, ignore_index: int | None = None, gap: int = TOUCH_GAP
    ) -> None:
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.gap = gap
        k = len(self.class_names)
        self.objects = np.zeros(k, dtype=np.int64)
        self.near = np.zeros(k, dtype=np.int64)
        self.merged = np.zeros(k, dtype=np.int64)
        self.images = np.zeros(k, dtype=np.int64)

    def update(self, prediction: np.ndarray, truth: np.ndarray) -> None:
        """Add one image: ``(H, W)`` predicted and true class maps."""
        prediction, truth = np.asarray(prediction), np.asarray(truth)
        if prediction.shape != truth.shape:
            raise ValueError(f"prediction {prediction.shape} and truth {truth.shape} differ")
        labelled = np.ones(truth.shape, dtype=bool)
        if self.ignore_index is not None:
            labelled = truth != self.ignore_index
        for index in np.unique(truth[labelled]):
            c = int(index)
            if not 0 <= c < len(self.class_names):
                continue
            true_objects, count = ndimage.label(truth == c, structure=_EIGHT)
            pred_objects, _ = ndimage.label((prediction == c) & labelled, structure=_EIGHT)
            overlap, _, _ = label_image_overlap(pred_objects, true_objects)
            _, merged, _ = merge_split_flags(overlap)
            self.objects[c] += count
            self.near[c] += near_another(true_objects.astype(np.int32), self.gap)
            self.merged[c] += int(np.count_nonzero(merged))
            self.images[c] += 1

    def compute(self) -> dict[str, Any]:
        """``gap_pixels`` and, per class with countable objects (on average at least
        :data:`MIN_OBJECTS_PER_IMAGE` per image holding it, :data:`MIN_OBJECTS` in all),
        ``objects``, ``near_fraction``, ``merge_rate`` and ``touching`` (the near fraction
        reaches :data:`TOUCHING_FRACTION`)."""
        per_class: dict[str, dict[str, Any]] = {}
        for c, name in enumerate(self.class_names):
            objects = int(self.objects[c])
            if objects < MIN_OBJECTS or objects < MIN_OBJECTS_PER_IMAGE * self.images[c]:
                continue
            near = float(self.near[c]) / objects
            per_class[name] = {
                "objects": objects,
                "near_fraction": near,
                "merge_rate": float(self.merged[c]) / objects,
                "touching": near >= TOUCHING_FRACTION,
            }
        return {"gap_pixels": self.gap, "per_class": per_class}
