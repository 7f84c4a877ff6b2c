"""Per-band normalisation: statistics streamed over the training split, stored with the run.

Images are first brought to float: 8-bit values are divided by 255 (so colour jitter works on
``[0, 1]``); 16-bit and float images keep their units. ``data.normalize`` then picks:

* ``"auto"`` — ImageNet mean/std for 8-bit RGB (what pretrained encoders expect), otherwise the
  per-band mean/std of the training split (grayscale microscopy, 16-bit multi-band satellite);
* ``"dataset"`` — always the training split's per-band statistics;
* ``"imagenet"`` — ImageNet statistics (3 bands only);
* ``"none"`` — no normalisation after the conversion to float.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pixelseg.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZE_MODES = ("auto", "dataset", "imagenet", "none")
_MIN_STD = 1e-6


def image_to_float(image: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` array in its stored dtype to a ``(C, H, W)`` float32 tensor.

    8-bit images are scaled to ``[0, 1]``; other dtypes keep their values.
    """
    array = image.astype(np.float32)
    if image.dtype == np.uint8:
        array /= 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


class BandStats:
    """Streaming per-band mean and variance (Chan et al.'s pairwise update, in float64).

    Feed it one image at a time with :meth:`update`; memory stays ``O(bands)``.
    """

    def __init__(self) -> None:
        self.count = 0.0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, image: torch.Tensor, valid: np.ndarray | None = None) -> None:
        """Add the pixels of a ``(C, H, W)`` float image where ``valid`` ``(H, W)`` is true."""
        pixels = image.reshape(image.shape[0], -1).double().numpy()
        if valid is not None:
            pixels = pixels[:, valid.reshape(-1)]
        n = pixels.shape[1]
        if n == 0:
            return
        mean = pixels.mean(axis=1)
        m2 = ((pixels - mean[:, None]) ** 2).sum(axis=1)
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = float(n), mean, m2
            return
        if mean.shape != self.mean.shape:
            raise ConfigError(
                f"images have different band counts ({self.mean.shape[0]} and {mean.shape[0]})"
            )
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta**2 * self.count * n / total
        self.count = total

    def normalizer(self) -> Normalizer:
        """The :class:`Normalizer` of the pixels seen so far."""
        if self.mean is None or self.m2 is None or self.count == 0:
            raise ConfigError("no training pixels to compute normalisation statistics from")
        std = np.sqrt(self.m2 / self.count)
        std = np.maximum(std, _MIN_STD)
        return Normalizer(tuple(float(v) for v in self.mean), tuple(float(v) for v in std))


@dataclass(frozen=True)
class Normalizer:
    """Subtract a per-band mean and divide by a per-band std.

    Attributes:
        mean: one value per band, in the units of :func:`image_to_float`.
        std: one value per band.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def bands(self) -> int:
        """Number of bands."""
        return len(self.mean)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """Normalise a ``(C, H, W)`` (or ``(N, C, H, W)``) float image."""
        if image.shape[-3] != self.bands:
            raise ConfigError(
                f"image has {image.shape[-3]} bands but the normaliser expects {self.bands}"
            )
        mean = torch.tensor(self.mean, dtype=image.dtype, device=image.device)[:, None, None]
        std = torch.tensor(self.std, dtype=image.dtype, device=image.device)[:, None, None]
        return (image - mean) / std

    @classmethod
    def identity(cls, bands: int) -> Normalizer:
        """A normaliser that changes nothing."""
        return cls((0.0,) * bands, (1.0,) * bands)

    @classmethod
    def imagenet(cls) -> Normalizer:
        """ImageNet's RGB statistics on ``[0, 1]`` images."""
        return cls(IMAGENET_MEAN, IMAGENET_STD)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict for the run directory."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Normalizer:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(float(v) for v in raw["mean"]), tuple(float(v) for v in raw["std"]))


def needs_band_stats(mode: str, *, bands: int, dtype: str) -> bool:
    """Whether :func:`choose_normalizer` computes statistics from the training images.

    Args:
        mode: ``data.normalize`` (an unknown mode needs none: it is refused instead).
        bands: band count of the images.
        dtype: stored dtype name of the images, e.g. ``"uint8"``.
    """
    return mode == "dataset" or (mode == "auto" and not (bands == 3 and dtype == "uint8"))


def choose_normalizer(
    mode: str,
    *,
    bands: int,
    dtype: str,
    train_images: Iterable[tuple[torch.Tensor, np.ndarray | None]] = (),
    stats: BandStats | None = None,
) -> Normalizer:
    """Pick or compute the normaliser for ``data.normalize = mode``.

    Args:
        mode: one of ``auto``, ``dataset``, ``imagenet``, ``none``.
        bands: band count of the images.
        dtype: stored dtype name of the images, e.g. ``"uint8"``.
        train_images: ``((C, H, W) float image, (H, W) valid-pixel mask or None)`` pairs, consumed
            only when statistics are needed and ``stats`` is not given.
        stats: statistics already accumulated over the training split (by the data check's
            single pass), used instead of ``train_images``.

    Raises:
        ConfigError: an unknown mode, or ImageNet statistics asked for a non-RGB image.
    """
    if mode not in NORMALIZE_MODES:
        raise ConfigError(f"data.normalize: {mode!r} is not one of {', '.join(NORMALIZE_MODES)}")
    if mode == "none":
        return Normalizer.identity(bands)
    if not needs_band_stats(mode, bands=bands, dtype=dtype):
        if bands != 3:
            raise ConfigError(f"data.normalize = 'imagenet' needs 3 bands, the images have {bands}")
        return Normalizer.imagenet()
    if stats is None:
        stats = BandStats()
        for image, valid in train_images:
            stats.update(image, valid)
    return stats.normalizer()
