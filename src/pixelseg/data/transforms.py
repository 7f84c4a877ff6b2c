"""Joint image/mask transforms: crop-first training crops, and evaluation padding.

The image is a ``(C, H, W)`` float tensor (8-bit images in ``[0, 1]``), the mask a ``(H, W)``
int64 tensor. Padding always fills masks with ``ignore_index``, never class 0, so padding is
never learned as a class; images are padded with their band means (0 once normalised, as the
Predictor pads: one rule for training, validation, evaluation and prediction).

Training (:class:`CropFirstTransform`): the crop window is chosen on the full-size arrays
(:mod:`pixelseg.data.crops`: random scale as a window of side ``crop / scale``, uniform or
foreground-centred position), then only the window is converted to float, resized, colour
jittered (3-band 8-bit images), padded, flipped and turned. The dataset hands it the arrays as
stored and cached (:meth:`CropFirstTransform.from_arrays`), so no full-size float copy is made.
Evaluation (:class:`SegmentationTransform`): padding to a multiple of the stride only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from pixelseg.data.crops import (
    CropSampler,
    CropWindow,
    FlipsAndTurns,
    pad_crop,
    pad_image,
    pad_to_multiple,
    scale_image,
    scale_nearest,
)
from pixelseg.data.foreground import class_rows, pick_class_pixel
from pixelseg.data.normalize import image_to_float


@runtime_checkable
class ArrayTransform(Protocol):
    """A transform that takes a sample's arrays as stored (what the dataset calls)."""

    def from_arrays(
        self,
        image: np.ndarray,
        label: np.ndarray,
        *,
        nodata: np.ndarray | None = None,
        fill: Sequence[float] | None = None,
        rows: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform ``(H, W, C)`` stored image and ``(H, W)`` class indices."""
        ...


def _fill_nodata(
    image: torch.Tensor, nodata: np.ndarray | None, fill: Sequence[float] | None
) -> torch.Tensor:
    """Set nodata pixels to ``fill`` (the band means: 0 after normalisation)."""
    if nodata is None or not nodata.any():
        return image
    values = torch.tensor(tuple(fill) if fill is not None else (0.0,) * len(image))
    image[:, torch.tensor(nodata)] = values[:, None].to(image.dtype)
    return image


def make_color_jitter(strength: float) -> v2.ColorJitter | None:
    """The colour jitter of ``strength`` (brightness, contrast, saturation; hue a quarter)."""
    if strength <= 0:
        return None
    return v2.ColorJitter(
        brightness=strength, contrast=strength, saturation=strength, hue=min(0.5, strength / 4)
    )


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
        return {"padding": [0, 0, (-width) % self.stride, (-height) % self.stride]}

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

    def from_arrays(
        self,
        image: np.ndarray,
        label: np.ndarray,
        *,
        nodata: np.ndarray | None = None,
        fill: Sequence[float] | None = None,
        rows: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole image: to float, nodata set to ``fill``, then the pipeline (padding with
        ``fill``, the band means: see :func:`~pixelseg.data.crops.pad_image`)."""
        tensor = _fill_nodata(image_to_float(image), nodata, fill)
        mask = torch.from_numpy(label.astype(np.int64))
        out: dict[str, torch.Tensor] = {}

        def run(shifted: torch.Tensor) -> torch.Tensor:
            out_image, out["mask"] = self(shifted, mask)
            return out_image

        return pad_image(tensor, run, fill), out["mask"]

    def __repr__(self) -> str:
        return f"SegmentationTransform({self.pipeline})"


class CropFirstTransform:
    """The training pipeline: window on the full image, then scale, jitter, pad, flip the crop.

    Args:
        crop_size: the crop's side.
        ignore_index: mask value of padded pixels.
        scale_range: random scale factors, ``(1, 1)`` for none.
        hflip, vflip, rot90: random flips and quarter turns.
        color_jitter: jitter strength (3-band images in ``[0, 1]``), 0 for none.
        stride: pad the crop to a multiple of this.
        foreground_share: share of crops centred on a pixel of ``foreground_classes``.
        foreground_classes: class indices a foreground-centred crop aims at.
    """

    def __init__(
        self,
        *,
        crop_size: int,
        ignore_index: int,
        scale_range: tuple[float, float] = (0.5, 2.0),
        hflip: bool = True,
        vflip: bool = False,
        rot90: bool = False,
        color_jitter: float = 0.0,
        stride: int = 32,
        foreground_share: float = 0.0,
        foreground_classes: Sequence[int] = (),
    ) -> None:
        self.classes = tuple(int(c) for c in foreground_classes)
        share = foreground_share if self.classes else 0.0
        self.sampler = CropSampler(crop_size, scale_range, share)
        self.flips = FlipsAndTurns(hflip=hflip, vflip=vflip, rot90=rot90)
        self.jitter = make_color_jitter(color_jitter)
        self.ignore_index = ignore_index
        self.stride = stride

    def _window(self, label: np.ndarray, rows: np.ndarray | None) -> CropWindow:
        def centre() -> tuple[int, int] | None:
            counts = rows if rows is not None else class_rows(label, max(self.classes) + 1)
            return pick_class_pixel(label, counts, self.classes)

        return self.sampler.draw(label.shape[0], label.shape[1], centre)

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform a ``(C, H, W)`` float image and its ``(H, W)`` int64 mask."""
        window = self._window(mask.numpy(), None)
        rows, cols = window.source
        return self._finish(image[:, rows, cols], mask[rows, cols], window, None)

    def from_arrays(
        self,
        image: np.ndarray,
        label: np.ndarray,
        *,
        nodata: np.ndarray | None = None,
        fill: Sequence[float] | None = None,
        rows: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform a stored ``(H, W, C)`` image and ``(H, W)`` class indices (any int dtype).

        Args:
            image: as stored (uint8 becomes ``[0, 1]`` after the cut).
            label: class indices and ``ignore_index``.
            nodata: ``(H, W)`` nodata pixels, set to ``fill`` before scaling.
            fill: the band means.
            rows: the label's :func:`~pixelseg.data.foreground.class_rows` when known.
        """
        window = self._window(label, rows)
        source = window.source
        cut = _fill_nodata(
            image_to_float(image[source]), None if nodata is None else nodata[source], fill
        )
        return self._finish(cut, torch.from_numpy(label[source].astype(np.int64)), window, fill)

    def _finish(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        window: CropWindow,
        fill: Sequence[float] | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        image = scale_image(image, window)
        mask = scale_nearest(mask, window)
        if self.jitter is not None:
            image = self.jitter(image)
        image = pad_image(image, lambda x: pad_crop(x, window, 0.0), fill)
        mask = pad_crop(mask, window, self.ignore_index)
        params = self.flips.draw()
        image, mask = self.flips.apply(image, params), self.flips.apply(mask, params)
        image = pad_image(image, lambda x: pad_to_multiple(x, self.stride, 0.0), fill)
        mask = pad_to_multiple(mask, self.stride, self.ignore_index)
        return image.contiguous(), mask.contiguous()

    def __repr__(self) -> str:
        return (
            f"CropFirstTransform(crop {self.sampler.crop_size}, scale {self.sampler.scale_range},"
            f" foreground share {self.sampler.foreground_share:g} of classes {self.classes})"
        )


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
    foreground_share: float = 0.0,
    foreground_classes: Sequence[int] = (),
) -> CropFirstTransform | SegmentationTransform:
    """The training or evaluation pipeline.

    Training (:class:`CropFirstTransform`): random scale, a crop of ``crop_size`` (padded when
    the image is smaller; ``foreground_share`` of them centred on a pixel of
    ``foreground_classes``), colour jitter, flips, optional 90° rotations, then padding to a
    multiple of ``stride``. Evaluation: only the padding to a multiple of ``stride``
    (predictions are cropped back).

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
        foreground_share: share of foreground-centred crops (see
            :mod:`pixelseg.data.foreground`).
        foreground_classes: the classes those crops aim at.
    """
    if train:
        return CropFirstTransform(
            crop_size=crop_size,
            ignore_index=ignore_index,
            scale_range=scale_range,
            hflip=hflip,
            vflip=vflip,
            rot90=rot90,
            color_jitter=color_jitter,
            stride=stride,
            foreground_share=foreground_share,
            foreground_classes=foreground_classes,
        )
    return SegmentationTransform([PadToMultiple(stride, ignore_index=ignore_index)])
