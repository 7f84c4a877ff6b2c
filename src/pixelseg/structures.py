"""Typed samples and batches passed between datasets, transforms, tasks and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class SemanticSample:
    """One image with a class map.

    Attributes:
        image: ``(C, H, W)`` float32, normalised.
        mask: ``(H, W)`` int64 class indices; ``ignore_index`` marks void, padding and pixels
            outside the valid region / nodata.
        id: the sample's id (image file stem).
        meta: free-form extras (source paths, original size).
    """

    image: torch.Tensor
    mask: torch.Tensor
    id: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class InstanceSample:
    """One image with one mask per object.

    Attributes:
        image: ``(C, H, W)`` float32, normalised.
        masks: ``(N, H, W)`` bool, one per object (``N`` may be 0).
        boxes: ``(N, 4)`` float32, XYXY in pixels.
        labels: ``(N,)`` int64 class indices (1-based for detection: 0 is background).
        ids: ``(N,)`` int64 object ids from the source.
        id: the image's id.
        ignore: ``(H, W)`` bool pixels to ignore (COCO ``iscrowd`` regions), or ``None``.
        meta: free-form extras.
    """

    image: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor
    id: str
    ignore: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Batch:
    """A collated batch of semantic samples.

    Attributes:
        images: ``(N, C, H, W)`` float32.
        masks: ``(N, H, W)`` int64 with ``ignore_index`` for void.
        ids: the sample ids.
        targets: per-image target dicts for instance tasks (``masks``, ``boxes``, ``labels``),
            or ``None`` for semantic batches.
    """

    images: torch.Tensor
    masks: torch.Tensor
    ids: list[str]
    targets: list[dict[str, torch.Tensor]] | None = None

    def to(self, device: torch.device | str) -> Batch:
        """Move tensors to ``device``."""
        targets = None
        if self.targets is not None:
            targets = [{k: v.to(device) for k, v in t.items()} for t in self.targets]
        return Batch(self.images.to(device), self.masks.to(device), self.ids, targets)


@dataclass(frozen=True)
class Region:
    """The real part of a padded input, as evaluation knows it.

    Attributes:
        size: ``(height, width)`` of the image before padding (outputs are cropped to it).
        ignore: ``(height, width)`` bool pixels where no object may be found (COCO crowd
            regions), or ``None``.
    """

    size: tuple[int, int]
    ignore: np.ndarray | None = None


@dataclass
class SemanticPrediction:
    """A semantic model's output for one image.

    Attributes:
        probs: ``(C, H, W)`` float32 class probabilities.
        label_map: ``(H, W)`` int64 most likely class per pixel.
    """

    probs: torch.Tensor
    label_map: torch.Tensor


@dataclass
class InstancePrediction:
    """An instance model's output for one image: one object per pixel, plus what scored them.

    Attributes:
        label_image: ``(H, W)`` int32 objects ``1..N`` (0 = background), overlaps resolved.
        scores: ``(N,)`` float32 confidence of object ``k`` at ``k - 1``.
        labels: ``(N,)`` int64 1-based class of each object.
        boxes: ``(N, 4)`` float32 XYXY boxes (``x2``, ``y2`` exclusive) of the objects.
        detections: the detector's raw, overlapping detections (Mask R-CNN: an object with
            ``probs`` ``(K, H, W)``, ``scores`` and ``labels``) for COCO mask AP, or ``None``.
        class_probs: ``(K, H, W)`` float32 class probabilities of the semantic net behind a
            watershed (background / interior / boundary), or ``None``.
    """

    label_image: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    detections: Any = None
    class_probs: np.ndarray | None = None

    @property
    def count(self) -> int:
        """Number of objects."""
        return int(self.scores.shape[0])


Prediction = SemanticPrediction | InstancePrediction
