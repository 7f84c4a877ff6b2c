"""One semantic sample's files, and reading them into arrays (no transform, no normalisation).

:func:`load_sample` decodes the image, the mask (encoded to class indices by the class map), the
optional valid-region mask and the nodata pixels (``data.nodata`` or a GeoTIFF's own value, and
NaN in any band of a float image) into one :class:`LoadedSample`, checking that they fit
together; every problem names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelseg.config import DataConfig
from pixelseg.data.classmap import ClassMap
from pixelseg.data.io import TIFF_SUFFIXES, read_header, read_image, read_mask, read_valid_mask
from pixelseg.errors import DataError


@dataclass(frozen=True)
class SamplePaths:
    """The files of one sample (they may not exist: the check reports that)."""

    id: str
    image: Path
    mask: Path
    valid: Path | None = None


@dataclass
class LoadedSample:
    """A sample read from disk, before transforms.

    Attributes:
        image: ``(H, W, C)`` in the stored dtype.
        label: ``(H, W)`` int64 class indices, ``ignore_index`` for void / invalid / nodata.
        nodata: ``(H, W)`` bool pixels whose image values are nodata, or ``None``.
        raw_mask: the mask as stored (``(H, W)`` or ``(H, W, 3)``); ``None`` for a sample
            restored from the cache (:mod:`pixelseg.data.cache`), which does not keep it.
    """

    image: np.ndarray
    label: np.ndarray
    nodata: np.ndarray | None
    raw_mask: np.ndarray | None = None


def _hw(shape: tuple[int, ...]) -> tuple[int, int]:
    return int(shape[0]), int(shape[1])


def size_mismatch(paths: SamplePaths, image_hw: tuple[int, int], mask_hw: tuple[int, int]) -> str:
    """The problem text for an image and mask of different sizes (EXIF rotation named)."""
    header = read_header(paths.image)
    stored = (header.height, header.width)
    if header.size != stored and mask_hw == stored:
        return (
            f"image {paths.image} is rotated by its EXIF orientation ({header.orientation}) "
            f"to {image_hw[1]}x{image_hw[0]}, but mask {paths.mask} matches only the unrotated "
            f"image ({stored[1]}x{stored[0]}); rotate the mask or strip the EXIF tag"
        )
    return (
        f"mask {paths.mask.name} is {mask_hw[1]}x{mask_hw[0]} but image {paths.image.name} "
        f"is {image_hw[1]}x{image_hw[0]} (width x height)"
    )


def load_sample(paths: SamplePaths, classmap: ClassMap, data: DataConfig) -> LoadedSample:
    """Read, check and encode one sample (no transform, no normalisation).

    Raises:
        DataError: any unreadable file, size mismatch or unknown mask value, naming the file.
    """
    image = read_image(paths.image, max_pixels=data.max_pixels)
    if not paths.mask.is_file():
        raise DataError(paths.mask, f"missing mask for image {paths.image.name}")
    raw = read_mask(paths.mask, max_pixels=data.max_pixels, palette_colours=classmap.expects_colour)
    if raw.shape[:2] != image.shape[:2]:
        raise DataError(paths.mask, size_mismatch(paths, _hw(image.shape), _hw(raw.shape)))
    label = classmap.encode(raw, paths.mask)
    if paths.valid is not None:
        if not paths.valid.is_file():
            raise DataError(paths.valid, f"missing valid-region mask for image {paths.image.name}")
        valid = read_valid_mask(paths.valid)
        if valid.shape != label.shape:
            raise DataError(paths.valid, size_mismatch(paths, _hw(image.shape), _hw(valid.shape)))
        label[~valid] = classmap.ignore_index
    nodata_value = data.nodata
    if nodata_value is None and paths.image.suffix.lower() in TIFF_SUFFIXES:
        nodata_value = read_header(paths.image).nodata  # a GeoTIFF's own GDAL_NODATA tag
    nodata = None
    if nodata_value is not None and not np.isnan(nodata_value):
        nodata = (image == nodata_value).all(axis=2)
    if image.dtype.kind == "f":
        # NaN in any band is nodata whatever data.nodata says: no network can take it
        missing = np.isnan(image).any(axis=2)
        nodata = missing if nodata is None else nodata | missing
    if nodata is not None:
        label[nodata] = classmap.ignore_index
    return LoadedSample(image, label, nodata, raw)
