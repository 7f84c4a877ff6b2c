"""Joint image/mask transforms built on ``torchvision.transforms.v2`` and ``tv_tensors``.

The image is a ``(C, H, W)`` float tensor (8-bit images already in ``[0, 1]``), the mask a
``(H, W)`` int64 tensor. Wrapping them as :class:`tv_tensors.Image` / :class:`tv_tensors.Mask` lets
v2 apply geometry to both (nearest-neighbour for the mask) and colour only to the image. Padding
always fills masks with ``ignore_index``, never class 0, so padding is never learned as a class.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F


class RandomScale(v2.Transform):
    """Resize by a random factor drawn log-uniformly from ``scale_range``.

    Args:
        scale_range: ``(min, max)`` factors relative to the input size.
    """

    def __init__(self, scale_range: tuple[float, float] = (0.5, 2.0)) -> None:
        super().__init__()
        self.scale_range = scale_range

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw the factor once for image and mask."""
        low, high = (math.log(s) for s in self.scale_range)
        factor = math.exp(low + (high - low) * float(torch.rand(())))
        height, width = v2.query_size(flat_inputs)
        return {"size": [max(1, round(height * factor)), max(1, round(width * factor))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Resize one input (masks use nearest neighbour inside ``F.resize``)."""
        return F.resize(inpt, params["size"], antialias=True)


class RandomRot90(v2.Transform):
    """Rotate by a random multiple of 90° (aerial and microscopy images have no "up")."""

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Draw the number of quarter turns once for image and mask."""
        return {"k": int(torch.randint(0, 4, ()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Rotate one input in its last two dimensions."""
        if params["k"] == 0:
            return inpt
        return tv_tensors.wrap(torch.rot90(inpt, params["k"], dims=(-2, -1)), like=inpt)


class PadToMultiple(v2.Transform):
    """Pad bottom and right so height and width are multiples of ``stride``.

    Args:
        stride: the model's output stride (32 for most encoders).
        ignore_index: fill value of masks.
        fill: fill value of images.
    """

    def __init__(self, stride: int, *, ignore_index: int, fill: float = 0.0) -> None:
        super().__init__()
        self.stride = stride
        self.ignore_index = ignore_index
        self.fill = fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        """Compute the padding once for image and mask."""
        height, width = v2.query_size(flat_inputs)
        return {
            "padding": [
                0,
                0,
                (-width) % self.stride,
                (-height) % self.stride,
            ]
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        """Pad one input with ``ignore_index`` for masks, ``fill`` for images."""
        if not any(params["padding"]):
            return inpt
        fill = self.ignore_index if isinstance(inpt, tv_tensors.Mask) else self.fill
        return F.pad(inpt, params["padding"], fill=fill)


class SegmentationTransform:
    """Apply a v2 pipeline jointly to ``(image, mask)`` and return plain tensors.

    Args:
        steps: v2 transforms.
    """

    def __init__(self, steps: list[v2.Transform]) -> None:
        self.pipeline = v2.Compose(steps)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform a ``(C, H, W)`` float image and its ``(H, W)`` int64 mask."""
        out_image, out_mask = self.pipeline(tv_tensors.Image(image), tv_tensors.Mask(mask))
        return out_image.as_subclass(torch.Tensor), out_mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"SegmentationTransform({self.pipeline})"


def augmentation_steps(
    *,
    crop_size: int,
    mask_fill: int,
    scale_range: tuple[float, float],
    hflip: bool,
    vflip: bool,
    rot90: v2.Transform | None,
    color_jitter: float,
) -> list[v2.Transform]:
    """The random training steps shared by semantic and instance pipelines.

    Args:
        mask_fill: value of mask pixels a crop pads (``ignore_index``, or 0 for instances).
        rot90: the 90° rotation transform to use (instances also turn their boxes), or ``None``.
    """
    steps: list[v2.Transform] = []
    if scale_range != (1.0, 1.0):
        steps.append(RandomScale(scale_range))
    fill = {tv_tensors.Image: 0.0, tv_tensors.Mask: mask_fill}
    steps.append(v2.RandomCrop(crop_size, pad_if_needed=True, fill=fill))  # type: ignore[arg-type]
    if hflip:
        steps.append(v2.RandomHorizontalFlip())
    if vflip:
        steps.append(v2.RandomVerticalFlip())
    if rot90 is not None:
        steps.append(rot90)
    if color_jitter > 0:
        jitter = v2.ColorJitter(
            brightness=color_jitter,
            contrast=color_jitter,
            saturation=color_jitter,
            hue=min(0.5, color_jitter / 4),
        )
        steps.append(jitter)
    return steps


def build_transforms(
    *,
    train: bool,
    crop_size: int,
    ignore_index: int,
    scale_range: tuple[float, float] = (0.5, 2.0),
    hflip: bool = True,
    vflip: bool = False,
    rot90: bool = False,
    color_jitter: float = 0.0,
    stride: int = 32,
) -> SegmentationTransform:
    """The training or evaluation pipeline.

    Training: random scale, random crop of ``crop_size`` (padded when the image is smaller),
    flips, optional 90° rotations and colour jitter, then padding to a multiple of ``stride``.
    Evaluation: only the padding to a multiple of ``stride`` (predictions are cropped back).

    Args:
        train: training (random) or evaluation (deterministic) pipeline.
        crop_size: side of the square training crop.
        ignore_index: mask value of padded pixels.
        scale_range: random scale factors, ``(1, 1)`` to disable.
        hflip: random horizontal flips.
        vflip: random vertical flips (aerial, microscopy).
        rot90: random multiples of 90° (aerial, microscopy).
        color_jitter: brightness/contrast/saturation strength; only for 3-band images in
            ``[0, 1]`` (the caller decides), 0 to disable.
        stride: pad height and width to a multiple of this.
    """
    steps: list[v2.Transform] = []
    if train:
        steps = augmentation_steps(
            crop_size=crop_size,
            mask_fill=ignore_index,
            scale_range=scale_range,
            hflip=hflip,
            vflip=vflip,
            rot90=RandomRot90() if rot90 else None,
            color_jitter=color_jitter,
        )
    steps.append(PadToMultiple(stride, ignore_index=ignore_index))
    return SegmentationTransform(steps)
