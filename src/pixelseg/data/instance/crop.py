"""Crop first, then augment, for instance samples: objects are built from the crop alone.

The v2 pipeline it replaces carried an ``(N, H, W)`` stack of the *whole* image's object masks
through every step. Here the crop window is chosen on the full-size label image
(:mod:`pixelseg.data.crops`: uniform, or centred on an object pixel), only the window of the
image, the label image and the ignore mask is cut, scaled, jittered, padded (label 0, padded
pixels ignored; image 0 before normalisation), flipped and turned, and the object masks and
boxes are then built from the cropped label image: objects the crop cut away disappear, and —
as ``SanitizeBoundingBoxes(min_size, min_area=min_size)`` did — an object whose tight box has a
side (or area) under ``min_size`` pixels is dropped with its label and id.

Extra per-pixel planes (the watershed task's cached full-image targets) can ride along: they
are cut, scaled (nearest), padded and turned exactly as the label image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from pixelseg.data.crops import (
    CropSampler,
    FlipsAndTurns,
    pad_crop,
    pad_image,
    pad_to_multiple,
    scale_image,
    scale_nearest,
)
from pixelseg.data.foreground import pick_object_pixel
from pixelseg.data.instance.compact import CompactInstances
from pixelseg.data.normalize import image_to_float
from pixelseg.data.transforms import make_color_jitter
from pixelseg.postprocess.masks import label_image_to_boxes
from pixelseg.structures import InstanceSample

#: A plane to crop with the sample: ``(array (H, W), fill value of padded pixels)``.
Plane = tuple[np.ndarray, float]


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Tight XYXY boxes (``x2``/``y2`` exclusive) of ``(N, H, W)`` masks; zeros for empty ones.

    Returns:
        ``(N, 4)`` float32.
    """
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    height, width = masks.shape[-2:]
    y1 = rows.int().argmax(dim=1)
    y2 = height - rows.flip(1).int().argmax(dim=1)
    x1 = cols.int().argmax(dim=1)
    x2 = width - cols.flip(1).int().argmax(dim=1)
    boxes = torch.stack([x1, y1, x2, y2], dim=1).float()
    boxes[~rows.any(dim=1)] = 0.0
    return boxes


class InstanceCropTransform:
    """The training pipeline of instance samples (see the module docstring).

    Args:
        crop_size: side of the square crop.
        scale_range: random scale factors; ``(1, 1)`` (default) disables scaling.
        hflip, vflip, rot90: random flips and quarter turns.
        color_jitter: jitter strength for 3-band ``[0, 1]`` images, 0 for none.
        stride: pad the crop to a multiple of this.
        min_size: smallest box side (pixels) an object keeps.
        foreground_share: share of crops centred on an object pixel.
    """

    def __init__(
        self,
        *,
        crop_size: int,
        scale_range: tuple[float, float] = (1.0, 1.0),
        hflip: bool = True,
        vflip: bool = True,
        rot90: bool = True,
        color_jitter: float = 0.0,
        stride: int = 32,
        min_size: float = 1.0,
        foreground_share: float = 0.0,
    ) -> None:
        self.sampler = CropSampler(crop_size, scale_range, foreground_share)
        self.flips = FlipsAndTurns(hflip=hflip, vflip=vflip, rot90=rot90)
        self.jitter = make_color_jitter(color_jitter)
        self.stride = stride
        self.min_size = min_size

    def from_compact(
        self,
        packed: CompactInstances,
        sample_id: str,
        *,
        planes: Mapping[str, Plane] | None = None,
        masks: bool = True,
        fill: Sequence[float] | None = None,
    ) -> tuple[InstanceSample, dict[str, torch.Tensor]]:
        """One random training crop of a packed sample.

        Args:
            packed: the sample (:mod:`pixelseg.data.instance.compact`).
            sample_id: the image's id.
            planes: full-size ``(H, W)`` planes to crop alike, by name.
            masks: build the per-object masks; without them (a semantic view needs only the
                label image) the sample's ``masks`` is ``(N, 0, 0)``.
            fill: the band means, which padded image pixels hold (see
                :func:`~pixelseg.data.crops.pad_image`).

        Returns:
            The cropped sample (image not normalised) and ``{"instances": (h, w) int64 label
            image of the kept objects, object ``i`` of the sample labelled ``i + 1``, and every
            plane of ``planes``}``.
        """
        label_image = packed.label_image
        window = self.sampler.draw(
            label_image.shape[0],
            label_image.shape[1],
            lambda: pick_object_pixel(label_image, packed.rows),
        )
        source = window.source
        image = scale_image(image_to_float(packed.image[source]), window)
        cut = {"labels": torch.from_numpy(label_image[source].astype(np.int64))}
        fills = {"labels": 0.0, "valid": 0.0}
        if packed.ignore is None:
            cut["valid"] = torch.ones((window.rows, window.cols), dtype=torch.bool)
        else:
            cut["valid"] = torch.from_numpy(~packed.ignore[source])
        for name, (array, plane_fill) in (planes or {}).items():
            cut[name] = torch.tensor(array[source])  # a copy: the cache stays untouched
            fills[name] = plane_fill
        if self.jitter is not None:
            image = self.jitter(image)
        params = self.flips.draw()
        image = pad_image(image, lambda x: pad_crop(x, window, 0.0), fill)
        image = pad_image(
            self.flips.apply(image, params),
            lambda x: pad_to_multiple(x, self.stride, 0.0),
            fill,
        )
        for name, plane in cut.items():
            plane = pad_crop(scale_nearest(plane, window), window, fills[name])
            cut[name] = pad_to_multiple(self.flips.apply(plane, params), self.stride, fills[name])
        return self._objects(image, cut, packed, sample_id, masks)

    def _objects(
        self,
        image: torch.Tensor,
        cut: dict[str, torch.Tensor],
        packed: CompactInstances,
        sample_id: str,
        with_masks: bool,
    ) -> tuple[InstanceSample, dict[str, torch.Tensor]]:
        """Boxes, labels, ids (and masks) of the objects left in the cropped label image."""
        labels = cut.pop("labels")
        valid = cut.pop("valid")
        found, found_boxes = label_image_to_boxes(labels.numpy())
        boxes = torch.from_numpy(found_boxes).reshape(-1, 4)
        sides = boxes[:, 2:] - boxes[:, :2]
        keep = (sides >= self.min_size).all(dim=1) & (sides.prod(dim=1) >= self.min_size)
        positions = torch.from_numpy(found).long()[keep]
        boxes = boxes[keep]
        lookup = torch.zeros(len(packed.ids) + 1, dtype=torch.int64)
        lookup[positions] = torch.arange(1, len(positions) + 1)
        if with_masks:
            object_masks = labels[None] == positions[:, None, None]
        else:
            object_masks = torch.zeros((len(positions), 0, 0), dtype=torch.bool)
        index = positions - 1
        ignore = ~valid
        sample = InstanceSample(
            image=image.contiguous(),
            masks=object_masks,
            boxes=boxes,
            labels=torch.tensor(packed.labels)[index],
            ids=torch.tensor(packed.ids)[index],
            id=sample_id,
            ignore=ignore if bool(ignore.any()) else None,
        )
        return sample, {"instances": lookup[labels], **cut}

    def __repr__(self) -> str:
        return (
            f"InstanceCropTransform(crop {self.sampler.crop_size}, scale "
            f"{self.sampler.scale_range}, foreground share {self.sampler.foreground_share:g})"
        )
