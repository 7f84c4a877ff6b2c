"""Data of the watershed task: targets derived from each augmented instance sample, and batches.

Targets are never stored: :class:`WatershedTargetDataset` wraps an
:class:`~pixelseg.data.instance.dataset.InstanceDataset` and derives them from the sample *after*
its crop, flips and rotations, so the boundary class and the border weights always match the
pixels the network sees (a crop that cuts an object leaves no false boundary at the cut).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from pixelseg.config import WatershedConfig
from pixelseg.data.instance.dataset import InstanceDataset
from pixelseg.structures import Batch, InstanceSample
from pixelseg.tasks.watershed.targets import watershed_targets

IGNORE_INDEX = 255
THREE_CLASS_NAMES = ("background", "interior", "boundary")
TWO_CLASS_NAMES = ("background", "object")


@dataclass
class WatershedSample:
    """One image with its derived targets.

    Attributes:
        image: ``(C, H, W)`` float32, normalised.
        class_map: ``(H, W)`` int64: background / interior / boundary (or background / object),
            ``IGNORE_INDEX`` on ignored and padded pixels.
        weight_map: ``(H, W)`` float32 per-pixel loss weight, 0 where ignored.
        instances: ``(H, W)`` int64 instance label image, 0 = background.
        distance: ``(H, W)`` float32 per-object normalised distance to the boundary, or None.
        id: the image's id.
        meta: ``orig_size`` (height, width before padding) and the source path.
    """

    image: torch.Tensor
    class_map: torch.Tensor
    weight_map: torch.Tensor
    instances: torch.Tensor
    distance: torch.Tensor | None
    id: str
    meta: dict[str, Any] = field(default_factory=dict)


def instance_label_image(masks: torch.Tensor) -> np.ndarray:
    """``(N, H, W)`` bool masks to an ``(H, W)`` int64 label image, object ``k`` labelled ``k+1``.

    Where masks overlap the earlier object keeps the pixel, as the instance formats do.
    """
    height, width = masks.shape[-2:]
    labels = np.zeros((height, width), dtype=np.int64)
    for index in range(masks.shape[0] - 1, -1, -1):
        labels[masks[index].numpy()] = index + 1
    return labels


def derive_targets(sample: InstanceSample, settings: WatershedConfig) -> WatershedSample:
    """The watershed task's targets of one (already augmented, normalised) instance sample.

    ``"three_class"`` targets use :func:`~pixelseg.tasks.watershed.targets.watershed_targets`;
    ``"two_class"`` ones are the union of the objects with weight 1 (the naive baseline).
    """
    labels = instance_label_image(sample.masks)
    distance: torch.Tensor | None = None
    if settings.targets == "three_class":
        targets = watershed_targets(
            labels,
            boundary_width=settings.boundary_width,
            w0=settings.w0,
            sigma=settings.sigma,
            with_distance=settings.distance_head,
        )
        class_map = torch.from_numpy(targets["class_map"])
        weight_map = torch.from_numpy(targets["weight_map"])
        if settings.distance_head:
            distance = torch.from_numpy(targets["distance"])
    else:
        class_map = torch.from_numpy((labels > 0).astype(np.int64))
        weight_map = torch.ones(class_map.shape, dtype=torch.float32)
    if sample.ignore is not None:
        class_map[sample.ignore] = IGNORE_INDEX
        weight_map[sample.ignore] = 0.0
    return WatershedSample(
        image=sample.image,
        class_map=class_map,
        weight_map=weight_map,
        instances=torch.from_numpy(labels),
        distance=distance,
        id=sample.id,
        meta=dict(sample.meta),
    )


class WatershedTargetDataset(Dataset[WatershedSample]):
    """An instance dataset whose samples carry the watershed task's targets.

    Args:
        instances: the instance dataset (its transform crops, flips and pads).
        settings: the ``[watershed]`` section (which targets, boundary width, w0, sigma).
    """

    def __init__(self, instances: InstanceDataset, settings: WatershedConfig) -> None:
        self.instances = instances
        self.settings = settings

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def normalizer(self) -> Any:
        """The wrapped dataset's normaliser."""
        return self.instances.normalizer

    @property
    def in_channels(self) -> int:
        """Band count of the images."""
        return self.instances.in_channels

    def __getitem__(self, index: int) -> WatershedSample:
        return derive_targets(self.instances[index], self.settings)


def _pad(tensor: torch.Tensor, height: int, width: int, value: float) -> torch.Tensor:
    return F.pad(tensor, (0, width - tensor.shape[-1], 0, height - tensor.shape[-2]), value=value)


def collate_watershed(samples: Sequence[WatershedSample]) -> Batch:
    """Collate samples, padding bottom/right to the largest (padding ignored, weight 0).

    Returns:
        A :class:`Batch`: ``images`` ``(N, C, H, W)``, ``masks`` ``(N, H, W)`` the class maps,
        and ``targets`` per image ``{"weight_map": (H, W) float32, "instances": (H, W) int64,
        "distance": (H, W) float32 (with a distance head)}``.
    """
    if not samples:
        raise ValueError("collate_watershed: no samples")
    height = max(s.image.shape[-2] for s in samples)
    width = max(s.image.shape[-1] for s in samples)
    targets = []
    for s in samples:
        target = {
            "weight_map": _pad(s.weight_map, height, width, 0.0),
            "instances": _pad(s.instances, height, width, 0),
        }
        if s.distance is not None:
            target["distance"] = _pad(s.distance, height, width, 0.0)
        targets.append(target)
    return Batch(
        images=torch.stack([_pad(s.image, height, width, 0.0) for s in samples]),
        masks=torch.stack([_pad(s.class_map, height, width, IGNORE_INDEX) for s in samples]),
        ids=[s.id for s in samples],
        targets=targets,
    )
