"""Joint transforms of an image and its objects, on ``torchvision.transforms.v2``.

The image goes through v2 as :class:`tv_tensors.Image`, the per-object masks ``(N, H, W)`` and
the valid region (the complement of the ignore mask) as :class:`tv_tensors.Mask`, the boxes as
:class:`tv_tensors.BoundingBoxes` (XYXY, pixel edges), so every geometric step moves all of them
together. Padding fills masks with 0 and marks the padded pixels as ignored. Afterwards the boxes
are recomputed from the masks (a crop clamps a box, but the visible part of the object may be
smaller) and :class:`v2.SanitizeBoundingBoxes` drops the objects a crop removed, with their masks,
labels and ids.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from pixelseg.data.transforms import PadToMultiple, augmentation_steps
from pixelseg.structures import InstanceSample


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


class RandomRot90Boxes(v2.Transform):
    """Rotate by a random multiple of 90° (counter-clockwise), boxes included.

    Microscopy and aerial images have no "up". ``torch.rot90`` moves pixel ``(y, x)`` of an
    ``H x W`` image to ``(W - 1 - x, y)``, so a box's edges move to ``(y1, W - x2, y2, W - x1)``.
    """

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw the number of quarter turns once for every input."""
        return {"k": int(torch.randint(0, 4, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Rotate one input."""
        k = params["k"]
        if k == 0:
            return inpt
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            boxes = inpt.as_subclass(torch.Tensor)
            height, width = inpt.canvas_size
            for _ in range(k):
                x1, y1, x2, y2 = boxes.unbind(-1)
                boxes = torch.stack([y1, width - x2, y2, width - x1], dim=-1)
                height, width = width, height
            return tv_tensors.BoundingBoxes(boxes, format=inpt.format, canvas_size=(height, width))
        if isinstance(inpt, tv_tensors.Image | tv_tensors.Mask):
            return tv_tensors.wrap(torch.rot90(inpt, k, dims=(-2, -1)), like=inpt)
        return inpt


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
) -> InstanceTransform:
    """The training or evaluation pipeline of instance samples.

    Training: optional random scale, a random crop of ``crop_size`` (padded when the image is
    smaller), flips, 90° rotations and colour jitter, then padding to a multiple of ``stride``.
    Evaluation: only the padding. Objects a crop removes are dropped in both.

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
    """
    steps: list[v2.Transform] = []
    if train:
        steps = augmentation_steps(
            crop_size=crop_size,
            mask_fill=0,
            scale_range=scale_range,
            hflip=hflip,
            vflip=vflip,
            rot90=RandomRot90Boxes() if rot90 else None,
            color_jitter=color_jitter,
        )
    # Masks and the valid region are padded with 0: no object there, and ignored.
    steps.append(PadToMultiple(stride, ignore_index=0))
    return InstanceTransform(steps, min_size=min_size)
