"""Crop first, then augment: the training crop's window is chosen on the full-size arrays.

Today's order — scale the whole image, pad it, crop, then flip — costs a resize of the whole
image per sample. The same distribution of crops comes from choosing the window first: a random
scale ``f`` (log-uniform in ``scale_range``) becomes a window of side ``round(crop / f)`` in the
source, resized to ``crop``; a window larger than the image takes the whole side and places it at
a uniformly random offset of the crop (what ``RandomCrop(pad_if_needed=True)`` does); otherwise
the window's position is uniform, or centred (clamped to the image) on a foreground pixel
(:mod:`pixelseg.data.foreground`). Only the window is ever converted to float, resized, jittered,
padded, flipped and turned. Every random draw comes from torch's global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

Centre = Callable[[], tuple[int, int] | None]


@dataclass(frozen=True)
class CropWindow:
    """Where a training crop's pixels come from and where they go.

    Attributes:
        top, left: the window's first source row and column.
        rows, cols: source rows and columns taken (the window clipped to the image).
        height, width: their size in the crop after scaling.
        pad_top, pad_left: where they sit in the ``out x out`` crop (the rest is padding).
        out: the crop's side.
    """

    top: int
    left: int
    rows: int
    cols: int
    height: int
    width: int
    pad_top: int
    pad_left: int
    out: int

    @property
    def source(self) -> tuple[slice, slice]:
        """``(row slice, column slice)`` of the source arrays."""
        return slice(self.top, self.top + self.rows), slice(self.left, self.left + self.cols)

    @property
    def scaled(self) -> bool:
        """The source pixels are resized."""
        return (self.height, self.width) != (self.rows, self.cols)

    def padding(self) -> tuple[int, int, int, int]:
        """``(left, right, top, bottom)`` padding, as :func:`torch.nn.functional.pad` takes it."""
        right = self.out - self.pad_left - self.width
        bottom = self.out - self.pad_top - self.height
        return self.pad_left, right, self.pad_top, bottom


def _randint(high: int) -> int:
    """Uniform in ``0..high`` (inclusive), from torch's global RNG."""
    return int(torch.randint(high + 1, ())) if high > 0 else 0


class CropSampler:
    """Draws crop windows: scale, then a uniform or foreground-centred position.

    Args:
        crop_size: the crop's side.
        scale_range: ``(min, max)`` scale factors; ``(1, 1)`` for none.
        foreground_share: probability that a crop is centred on a foreground pixel.
    """

    def __init__(
        self,
        crop_size: int,
        scale_range: tuple[float, float] = (1.0, 1.0),
        foreground_share: float = 0.0,
    ) -> None:
        self.crop_size = crop_size
        self.scale_range = scale_range
        self.foreground_share = foreground_share

    def draw(self, height: int, width: int, centre: Centre | None = None) -> CropWindow:
        """A window for an ``height x width`` image.

        Args:
            height, width: the image's size.
            centre: gives a foreground pixel ``(y, x)`` (``None`` when the image has none);
                called only for the crops drawn to be foreground-centred.
        """
        crop = self.crop_size
        side = crop
        if tuple(self.scale_range) != (1.0, 1.0):
            low, high = (math.log(s) for s in self.scale_range)
            factor = math.exp(low + (high - low) * float(torch.rand(())))
            side = max(1, round(crop / factor))
        point = None
        drawn = self.foreground_share > 0 and centre is not None
        if drawn and float(torch.rand(())) < self.foreground_share:
            point = centre()  # type: ignore[misc]
        top, rows, out_h, pad_top = self._axis(height, side, None if point is None else point[0])
        left, cols, out_w, pad_left = self._axis(width, side, None if point is None else point[1])
        return CropWindow(top, left, rows, cols, out_h, out_w, pad_top, pad_left, crop)

    def _axis(self, size: int, side: int, at: int | None) -> tuple[int, int, int, int]:
        """``(first source index, count, count after scaling, offset in the crop)``."""
        crop = self.crop_size
        if size >= side:
            if at is None:
                start = _randint(size - side)
            else:
                start = min(max(at - side // 2, 0), size - side)
            return start, side, crop, 0
        scaled = min(crop, max(1, round(size * crop / side)))
        return 0, size, scaled, _randint(crop - scaled)


def _nearest(count: int, out: int) -> torch.Tensor:
    """Source indices of nearest-neighbour resizing (as ``interpolate(mode="nearest")``)."""
    return (
        (torch.arange(out, dtype=torch.float64) * (count / out))
        .floor()
        .long()
        .clamp_(max=count - 1)
    )


def scale_image(image: torch.Tensor, window: CropWindow) -> torch.Tensor:
    """Resize a cut ``(C, rows, cols)`` float image to the window's size (bilinear, antialiased)."""
    if not window.scaled:
        return image
    return TF.resize(image, [window.height, window.width], antialias=True)


def scale_nearest(plane: torch.Tensor, window: CropWindow) -> torch.Tensor:
    """Resize a cut ``(..., rows, cols)`` plane (labels, masks) by nearest neighbour."""
    if not window.scaled:
        return plane
    rows = _nearest(window.rows, window.height)
    cols = _nearest(window.cols, window.width)
    return plane[..., rows, :][..., cols]


def pad_crop(plane: torch.Tensor, window: CropWindow, fill: float) -> torch.Tensor:
    """Place a scaled cut in the ``out x out`` crop, ``fill`` around it."""
    padding = window.padding()
    if not any(padding):
        return plane
    return F.pad(plane, padding, value=fill)


def pad_to_multiple(plane: torch.Tensor, stride: int, fill: float) -> torch.Tensor:
    """Pad bottom and right so the last two dimensions are multiples of ``stride``."""
    height, width = plane.shape[-2:]
    bottom, right = (-height) % stride, (-width) % stride
    if not (bottom or right):
        return plane
    return F.pad(plane, (0, right, 0, bottom), value=fill)


def pad_image(
    image: torch.Tensor,
    pad: Callable[[torch.Tensor], torch.Tensor],
    fill: Sequence[float] | None,
) -> torch.Tensor:
    """``pad`` (which fills with 0) applied to a ``(C, H, W)`` image so that padded pixels
    hold ``fill``, the band means: 0 once normalised, exactly what the Predictor pads with
    (:func:`pixelseg.engine.padding.pad_for_model`). One padding rule for training crops,
    validation, evaluation and prediction."""
    if fill is None:
        return pad(image)
    mean = torch.tensor(tuple(fill), dtype=image.dtype)[:, None, None]
    # Real pixels stay bit for bit what they were (x + 0), padded ones become the mean.
    padded = pad(torch.ones_like(image[:1])) == 0
    return pad(image) + padded * mean


class FlipsAndTurns:
    """Random flips and quarter turns, the same for every plane of one crop.

    Args:
        hflip: random horizontal flips.
        vflip: random vertical flips.
        rot90: random multiples of 90° (counter-clockwise, as ``torch.rot90``).
    """

    def __init__(self, *, hflip: bool, vflip: bool, rot90: bool) -> None:
        self.hflip, self.vflip, self.rot90 = hflip, vflip, rot90

    def draw(self) -> tuple[bool, bool, int]:
        """``(flip left-right, flip up-down, quarter turns)``."""
        horizontal = self.hflip and float(torch.rand(())) < 0.5
        vertical = self.vflip and float(torch.rand(())) < 0.5
        turns = int(torch.randint(4, ())) if self.rot90 else 0
        return horizontal, vertical, turns

    @staticmethod
    def apply(plane: torch.Tensor, params: tuple[bool, bool, int]) -> torch.Tensor:
        """Apply drawn ``params`` to a ``(..., H, W)`` plane."""
        horizontal, vertical, turns = params
        if horizontal:
            plane = plane.flip(-1)
        if vertical:
            plane = plane.flip(-2)
        if turns:
            plane = torch.rot90(plane, turns, dims=(-2, -1))
        return plane
