"""Anchor sizes for Mask R-CNN from the objects of the training split.

Images stay at their native size, so anchors should match the objects' pixel sizes: the
default is what ``pixelseg check`` suggests
(:func:`~pixelseg.data.instance.check.suggest_anchor_sizes`, powers of two over the 5th-95th
percentile of ``sqrt(area)``), from a few training images only, so a run starts fast. Their
areas come from the data check's pass when it ran (no image is read again), else from the files.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pixelseg.data.instance.check import suggest_anchor_sizes
from pixelseg.data.instance.dataset import InstanceDataset
from pixelseg.models.mask_rcnn import DEFAULT_ANCHOR_SIZES

#: Training images read for the object sizes (spread evenly over the split).
MAX_IMAGES = 32
#: Pyramid levels of the detector (strides 4, 8, 16, 32, 64): one anchor size each.
PYRAMID_LEVELS = 5
#: Smallest anchor side: one stride of the finest level.
MIN_ANCHOR = 4


def object_areas(dataset: InstanceDataset, *, max_images: int = MAX_IMAGES) -> np.ndarray:
    """Pixel areas of the objects of up to ``max_images`` images spread over ``dataset``.

    The areas the data check measured (``dataset.object_areas``, set by
    :func:`~pixelseg.data.instance.build.build_instance_datasets` with ``verify``) are used
    where present; only images without them are read.

    Returns:
        ``(N,)`` int64 areas, one per object (untransformed images: native pixels).
    """
    count = len(dataset)
    picked = np.unique(np.linspace(0, count - 1, num=min(count, max_images)).round().astype(int))
    known = dataset.object_areas or {}
    areas = []
    for index in picked.tolist():
        measured = known.get(dataset.samples[index].id)
        if measured is not None:
            areas.append(measured)
            continue
        label_image = dataset.load(index).label_image
        sizes = np.bincount(label_image.ravel().astype(np.int64))[1:]
        areas.append(sizes[sizes > 0])
    return np.concatenate(areas) if areas else np.zeros(0, dtype=np.int64)


def anchors_per_level(suggested: list[int]) -> list[int]:
    """One anchor side per pyramid level: the smallest suggested size, doubling per level.

    The suggestions are consecutive powers of two; five doublings from the smallest cover them
    (and larger objects too), and one size per level keeps the RPN head's anchor count equal
    on every level, as torchvision requires.
    """
    smallest = max(MIN_ANCHOR, min(suggested))
    return [smallest * 2**level for level in range(PYRAMID_LEVELS)]


def resolve_anchor_sizes(configured: Any, train: InstanceDataset | None) -> dict[str, Any]:
    """The anchor sizes a new run uses, and where they came from.

    Args:
        configured: ``model.options.anchor_sizes`` from the config, or None.
        train: the training dataset (None when not built).

    Returns:
        ``anchor_sizes`` (five entries), ``source`` (``"config"``, ``"train split"`` or
        ``"default"``), and for the train split ``suggested``, ``objects`` and ``images``.
    """
    if configured is not None:
        return {"anchor_sizes": configured, "source": "config"}
    default = [int(sizes[0]) for sizes in DEFAULT_ANCHOR_SIZES]
    if train is None or len(train) == 0:
        return {"anchor_sizes": default, "source": "default"}
    areas = object_areas(train)
    suggested = suggest_anchor_sizes(areas)
    if not suggested:
        return {"anchor_sizes": default, "source": "default", "objects": 0}
    return {
        "anchor_sizes": anchors_per_level(suggested),
        "source": "train split",
        "suggested": suggested,
        "objects": int(areas.size),
        "images": min(len(train), MAX_IMAGES),
    }
