"""Joint transforms of an image and its objects: crop-first training crops, evaluation padding.

Training: :class:`~pixelseg.data.instance.crop.InstanceCropTransform` (the window chosen on the
full-size label image, objects built from the crop alone). Evaluation: :class:`InstanceTransform`
on ``torchvision.transforms.v2`` — the image as :class:`tv_tensors.Image`, the per-object masks
``(N, H, W)`` and the valid region (the complement of the ignore mask) as
:class:`tv_tensors.Mask`, the boxes as :class:`tv_tensors.BoundingBoxes` (XYXY, pixel edges), so
every step moves all of them together; padding fills masks with 0 and marks the padded pixels
as ignored. Afterwards the boxes are recomputed from the masks and
:class:`v2.SanitizeBoundingBoxes` drops objects left empty, with their masks, labels and ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from pixelseg.data.crops import pad_image
from pixelseg.data.instance.compact import CompactInstances, sample_from_compact
from pixelseg.data.instance.crop import InstanceCropTransform, Plane, boxes_from_masks
from pixelseg.data.transforms import PadToMultiple
from pixelseg.structures import InstanceSample

__all__ = [
    "CompactTransform",
    "InstanceCropTransform",
    "InstanceTransform",
    "boxes_from_masks",
    "build_instance_transforms",
]


@runtime_checkable
class CompactTransform(Protocol):
    """A transform that takes a packed sample (what the instance dataset calls)."""

    def from_compact(
        self,
        packed: CompactInstances,
        sample_id: str,
        *,
        planes: Mapping[str, Plane] | None = None,
        masks: bool = True,
        fill: Sequence[float] | None = None,
    ) -> tuple[InstanceSample, dict[str, torch.Tensor]]:
        """The transformed sample, and the cropped planes (empty when none are cropped)."""
        ...


def _labels_and_ids(inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``SanitizeBoundingBoxes`` filters with the boxes (a function: workers pickle it)."""
    return inputs["labels"], inputs["ids"]


class InstanceTransform:
    """Apply v2 steps jointly to an :class:`InstanceSample`, then drop objects left empty.

    Args:
        steps: geometric and colour v2 transforms.
        min_size: objects whose box is narrower or lower than this (pixels) are dropped.
    """

    def __init__(self, steps: list[v2.Transform], *, min_size: float = 1.0) -> None:
        self.pipeline = v2.Compose(steps)
        self.sanitize = v2.SanitizeBoundingBoxes(
            min_size=min_size,
            min_area=min_size,
            labels_getter=_labels_and_ids,
        )

    def __call__(self, sample: InstanceSample) -> InstanceSample:
        """Transform a sample whose ``image`` is ``(C, H, W)`` float and ``masks`` ``(N, H, W)``."""
        height, width = sample.image.shape[-2:]
        valid = (
            torch.ones((height, width), dtype=torch.uint8)
            if sample.ignore is None
            else (~sample.ignore).to(torch.uint8)
        )
        image, masks, _moved_boxes, valid = self.pipeline(
            tv_tensors.Image(sample.image),
            tv_tensors.Mask(sample.masks.to(torch.uint8)),
            tv_tensors.BoundingBoxes(sample.boxes, format="XYXY", canvas_size=(height, width)),
            tv_tensors.Mask(valid),
        )
        canvas = tuple(image.shape[-2:])
        tight = tv_tensors.BoundingBoxes(
            boxes_from_masks(masks.as_subclass(torch.Tensor).bool()),
            format="XYXY",
            canvas_size=canvas,
        )
        kept = self.sanitize(
            {"boxes": tight, "masks": masks, "labels": sample.labels, "ids": sample.ids}
        )
        ignore = valid.as_subclass(torch.Tensor) == 0
        return InstanceSample(
            image=image.as_subclass(torch.Tensor),
            masks=kept["masks"].as_subclass(torch.Tensor).bool(),
            boxes=kept["boxes"].as_subclass(torch.Tensor).float(),
            labels=kept["labels"],
            ids=kept["ids"],
            id=sample.id,
            ignore=ignore if bool(ignore.any()) else None,
            meta=dict(sample.meta),
        )

    def from_compact(
        self,
        packed: CompactInstances,
        sample_id: str,
        *,
        planes: Mapping[str, Plane] | None = None,
        masks: bool = True,
        fill: Sequence[float] | None = None,
    ) -> tuple[InstanceSample, dict[str, torch.Tensor]]:
        """The whole image with every object's mask, through the pipeline (no planes; the
        masks are always built); padded image pixels hold ``fill``, the band means (see
        :func:`~pixelseg.data.crops.pad_image`)."""
        sample = sample_from_compact(packed, sample_id)
        out: dict[str, InstanceSample] = {}

        def run(image: torch.Tensor) -> torch.Tensor:
            out["sample"] = self(dataclasses.replace(sample, image=image))
            return out["sample"].image

        image = pad_image(sample.image, run, fill)
        return dataclasses.replace(out["sample"], image=image), {}

    def __repr__(self) -> str:
        return f"InstanceTransform({self.pipeline})"


def build_instance_transforms(
    *,
    train: bool,
    crop_size: int,
    scale_range: tuple[float, float] = (1.0, 1.0),
    hflip: bool = True,
    vflip: bool = True,
    rot90: bool = True,
    color_jitter: float = 0.0,
    stride: int = 32,
    min_size: float = 1.0,
    foreground_share: float = 0.0,
) -> InstanceCropTransform | InstanceTransform:
    """The training or evaluation pipeline of instance samples.

    Training: a crop of ``crop_size`` chosen on the full image (``foreground_share`` of them
    centred on an object pixel; optional random scale; padded when the image is smaller), colour
    jitter, flips, 90° rotations, then padding to a multiple of ``stride``; the objects are
    those of the cropped label image. Evaluation: only the padding. Objects whose box is smaller
    than ``min_size`` are dropped in both.

    Args:
        train: training (random) or evaluation (deterministic) pipeline.
        crop_size: side of the square training crop.
        scale_range: random scale factors; ``(1, 1)`` (default) disables scaling.
        hflip: random horizontal flips.
        vflip: random vertical flips.
        rot90: random multiples of 90°.
        color_jitter: brightness/contrast/saturation strength for 3-band ``[0, 1]`` images.
        stride: pad height and width to a multiple of this.
        min_size: smallest box side (pixels) an object keeps after the transforms.
        foreground_share: share of training crops centred on an object pixel.
    """
    if train:
        return InstanceCropTransform(
            crop_size=crop_size,
            scale_range=scale_range,
            hflip=hflip,
            vflip=vflip,
            rot90=rot90,
            color_jitter=color_jitter,
            stride=stride,
            min_size=min_size,
            foreground_share=foreground_share,
        )
    # Masks and the valid region are padded with 0: no object there, and ignored.
    return InstanceTransform([PadToMultiple(stride, ignore_index=0)], min_size=min_size)
