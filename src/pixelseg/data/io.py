"""Reading images and masks: PNG, JPEG (EXIF orientation), TIFF and GeoTIFF, GIF, BMP.

Images come back as ``(H, W, C)`` arrays in their stored dtype (uint8, uint16, int16, float32...);
a PNG's or GIF's alpha is dropped, a TIFF keeps every band (see :mod:`pixelseg.data.tiff`:
GDAL through rasterio, with the georeferencing, or tifffile for a stack of pages). Masks come
back as ``(H, W)`` integer arrays or ``(H, W, 3)`` uint8 colours. Sizes are read from the file
header first, so an absurdly large file is refused before its pixels are decoded. Every failure
is a :class:`~pixelseg.errors.DataError` naming the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pixelseg.data.raster import GeoReference, RasterHeader
from pixelseg.data.tiff import MAX_BANDS, read_tiff, read_tiff_header
from pixelseg.errors import DataError

__all__ = [
    "MAX_BANDS",
    "TIFF_SUFFIXES",
    "ImageHeader",
    "check_pixel_limit",
    "image_size",
    "read_header",
    "read_image",
    "read_image_and_header",
    "read_mask",
    "read_valid_mask",
]

TIFF_SUFFIXES = (".tif", ".tiff")
#: The most pixels an image is decoded whole with (a header announcing more is refused before
#: any pixel is read): 2**30, 3 GB of RGB bytes. A larger GeoTIFF is streamed window by window.
DECODE_MAX_PIXELS = 2**30
# EXIF orientations 5-8 transpose the image: width and height swap when it is displayed.
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, before any pixel is decoded.

    Attributes:
        height: stored height in pixels (before EXIF orientation).
        width: stored width in pixels.
        bands: number of channels (a PNG's alpha included; every band of a TIFF).
        dtype: numpy dtype name of a sample, e.g. ``"uint8"``.
        orientation: EXIF orientation tag (1 = upright), 1 when absent.
        nodata: the nodata value of a (Geo)TIFF, or ``None``.
        georef: a GeoTIFF's CRS and transform, or ``None`` for a plain image.
        reader: the library that decodes the pixels: ``"pillow"``, or for TIFFs ``"rasterio"``
            or ``"tifffile"`` (see :mod:`pixelseg.data.tiff`).
    """

    height: int
    width: int
    bands: int
    dtype: str
    orientation: int = 1
    nodata: float | None = None
    georef: GeoReference | None = None
    reader: str = "pillow"

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` as displayed, i.e. after the EXIF orientation is applied."""
        if self.orientation in _SWAPPING_ORIENTATIONS:
            return self.width, self.height
        return self.height, self.width

    @property
    def pixels(self) -> int:
        """Number of pixels."""
        return self.height * self.width

    def raster(self) -> RasterHeader:
        """The header as :mod:`pixelseg.data.raster` knows it."""
        return RasterHeader(
            self.height, self.width, self.bands, self.dtype, self.nodata, self.georef
        )


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in TIFF_SUFFIXES


def _header_orientation(img: Image.Image) -> int:
    """EXIF orientation without decoding: PNG's ``getexif`` would read past the pixel data."""
    if img.format in ("JPEG", "MPO", "WEBP", "TIFF"):
        return int(img.getexif().get(_ORIENTATION_TAG, 1) or 1)
    raw = img.info.get("exif")
    if not raw:
        return 1
    exif = Image.Exif()
    exif.load(raw)
    return int(exif.get(_ORIENTATION_TAG, 1) or 1)


def read_header(path: str | Path) -> ImageHeader:
    """Read size, bands, dtype (and a TIFF's nodata and georeferencing) without decoding pixels.

    Raises:
        DataError: the file is missing or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if _is_tiff(path):
        tiff, reader = read_tiff_header(path)
        return ImageHeader(
            tiff.height, tiff.width, tiff.bands, tiff.dtype, 1, tiff.nodata, tiff.georef, reader
        )
    try:
        with Image.open(path) as img:
            width, height = img.size
            bands = len(img.getbands())
            orientation = _header_orientation(img)
            dtype = "uint16" if img.mode.startswith("I;16") else "uint8"
            if img.mode in ("I", "F"):
                dtype = "int32" if img.mode == "I" else "float32"
    except Image.DecompressionBombError as exc:  # Pillow refuses from the header alone
        raise DataError(path, f"refused before decoding: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(path, f"not a readable image ({exc})") from exc
    return ImageHeader(height, width, bands, dtype, orientation)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image as displayed, read from the header only."""
    return read_header(path).size


def check_pixel_limit(path: str | Path, header: ImageHeader, max_pixels: int) -> None:
    """Refuse an image whose header announces more than ``max_pixels`` pixels.

    Raises:
        DataError: the image is too large.
    """
    if header.pixels > max_pixels:
        raise DataError(
            path,
            f"image is {header.width}x{header.height} = {header.pixels} pixels, above "
            f"data.max_pixels = {max_pixels} (a corrupt header or a file to tile first)",
        )


def _open_pil(path: Path) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(path)
            img.load()
            transposed = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise DataError(path, f"not a readable image ({exc})") from exc
    except Image.DecompressionBombError as exc:
        raise DataError(path, f"refused before decoding: {exc}") from exc
    except MemoryError as exc:
        raise DataError(path, "too large to decode in memory") from exc
    except (OSError, ValueError) as exc:
        raise DataError(path, f"truncated or corrupt image data ({exc})") from exc
    return transposed if transposed is not None else img


def _drop_alpha(img: Image.Image) -> Image.Image:
    if img.mode in ("RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    if img.mode in ("LA", "La"):
        return img.convert("L")
    if img.mode == "1":
        return img.convert("L")
    return img


def _header_within(path: Path, max_pixels: int | None) -> ImageHeader:
    header = read_header(path)
    if max_pixels is not None:
        check_pixel_limit(path, header, max_pixels)
    return header


def read_image_and_header(
    path: str | Path, *, max_pixels: int | None = None
) -> tuple[np.ndarray, ImageHeader]:
    """:func:`read_image`, with the header it was read by (nodata value, georeferencing).

    Raises:
        DataError: as :func:`read_image`.
    """
    path = Path(path)
    header = _header_within(path, DECODE_MAX_PIXELS if max_pixels is None else max_pixels)
    if header.reader == "pillow":
        array = np.asarray(_drop_alpha(_open_pil(path)))
    else:
        array = read_tiff(path, header.raster(), header.reader)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[2] > MAX_BANDS:
        raise DataError(path, f"{array.shape[2]} bands; at most {MAX_BANDS} are supported")
    return array, header


def read_image(path: str | Path, *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image as ``(H, W, C)`` in its stored dtype, EXIF-oriented.

    A PNG's, GIF's or JPEG's alpha channel is dropped (RGBA to RGB); a TIFF keeps every band, so
    an 8-bit 4-band TIFF (RGB+NIR) reads as 4 bands.

    Args:
        path: PNG, JPEG, TIFF or GeoTIFF (1-13 bands, 8/16-bit integers or float), GIF or BMP.
        max_pixels: refuse files whose header announces more pixels than this.

    Raises:
        DataError: missing, corrupt, truncated, too large, or more than 13 bands.
    """
    return read_image_and_header(path, max_pixels=max_pixels)[0]


def _gray_palette(img: Image.Image) -> bool:
    """Whether every colour of an indexed image's palette that is used is a shade of gray."""
    palette = img.getpalette()
    if not palette:
        return False
    used = [i for i, count in enumerate(img.histogram()) if count]
    rgb = [palette[3 * i : 3 * i + 3] for i in used if 3 * i + 2 < len(palette)]
    return all(r == g == b for r, g, b in rgb)


def read_mask(
    path: str | Path, *, max_pixels: int | None = None, palette_colours: bool = False
) -> np.ndarray:
    """Read a mask: ``(H, W)`` integers, or ``(H, W, 3)`` uint8 for colour masks.

    An RGB mask whose three channels are equal everywhere is returned as ``(H, W)``.

    Args:
        path: mask file.
        max_pixels: refuse files whose header announces more pixels than this.
        palette_colours: convert an indexed ("P" mode) PNG/GIF to its RGB colours (for
            palette-mapped datasets) instead of returning its indices. An indexed image with
            a gray palette is returned as its gray values either way.

    Raises:
        DataError: missing, corrupt, truncated or too large.
    """
    path = Path(path)
    header = _header_within(path, max_pixels)
    if header.reader != "pillow":
        array = read_tiff(path, header.raster(), header.reader)
    else:
        img = _open_pil(path)
        if img.mode == "P" and (palette_colours or _gray_palette(img)):
            # a gray palette (Pillow's GIFs of 0/255 masks) means the gray values, as displayed
            img = img.convert("RGB" if palette_colours else "L")
        elif img.mode in ("RGBA", "LA", "PA"):
            img = img.convert("RGB" if img.mode == "RGBA" else "L")
        elif img.mode == "1":
            img = img.convert("L")
        array = np.asarray(img)
    if array.ndim == 3:
        array = array[..., :3]
        if array.shape[2] == 1 or (
            np.array_equal(array[..., 0], array[..., 1])
            and np.array_equal(array[..., 0], array[..., 2])
        ):
            array = array[..., 0]
    return np.ascontiguousarray(array)


def read_valid_mask(path: str | Path) -> np.ndarray:
    """Read a valid-region mask (DRIVE's field of view) as ``(H, W)`` bool, non-zero = valid."""
    array = read_mask(path)
    if array.ndim == 3:
        return np.asarray(array.any(axis=2))
    return np.asarray(array != 0)
