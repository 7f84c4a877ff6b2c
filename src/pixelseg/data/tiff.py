"""TIFF files, one decision for all of them: which library decodes them, their bands, dtype, nodata.

A TIFF holding one image — a GeoTIFF or a plain one, any band count (an 8-bit 4-band TIFF is
RGB+NIR as often as RGBA: every band is kept), any compression — is read by GDAL through
:mod:`pixelseg.data.raster`, with its CRS, transform and nodata value. A stack of pages (what
``tifffile.imwrite`` makes of a ``(bands, H, W)`` grey array without ``planarconfig``), which GDAL
sees as sub-datasets, is read by tifffile with each page a band and the GDAL_NODATA tag of the
first page; so is every TIFF when rasterio is not installed. :func:`read_tiff_header` decides,
:func:`read_tiff` decodes what it decided.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pixelseg.data.raster import RasterHeader, rasterio_available, read_raster, read_raster_header
from pixelseg.errors import DataError

MAX_BANDS = 13
#: Which library decodes a TIFF's pixels.
RASTERIO, TIFFFILE = "rasterio", "tifffile"
_GDAL_NODATA_TAG = 42113


def _band_axis(shape: tuple[int, ...], axes: str) -> int | None:
    """Index of the band axis of a 3-D tifffile series, or ``None`` for a single band."""
    if len(shape) == 2:
        return None
    if len(shape) != 3:
        raise ValueError(f"unsupported TIFF shape {shape} (axes {axes})")
    if axes.endswith("S"):
        return 2
    if axes.endswith("YX"):
        return 0
    return 2 if shape[2] <= MAX_BANDS else 0


def _squeezed(shape: tuple[int, ...], axes: str) -> tuple[tuple[int, ...], str]:
    """Leading length-1 axes (a one-page stack) removed."""
    if len(shape) <= 3:
        return shape, axes
    kept = [i for i, s in enumerate(shape) if s != 1]
    return tuple(shape[i] for i in kept), "".join(axes[i] for i in kept)


def _tifffile_header(path: Path) -> RasterHeader:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes = _squeezed(tuple(series.shape), series.axes)
            tag = tif.pages[0].tags.get(_GDAL_NODATA_TAG)  # type: ignore[union-attr]
            nodata = float(str(tag.value).strip("\x00 ")) if tag is not None else None
            dtype = str(series.dtype)
    except Exception as exc:
        raise DataError(path, f"not a readable TIFF ({exc})") from exc
    try:
        band_axis = _band_axis(shape, axes)
    except ValueError as exc:
        raise DataError(path, str(exc)) from exc
    spatial = [s for i, s in enumerate(shape) if i != band_axis]
    bands = 1 if band_axis is None else shape[band_axis]
    return RasterHeader(spatial[0], spatial[1], bands, dtype, nodata, None)


def _tifffile_read(path: Path) -> np.ndarray:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, axes = _squeezed(tuple(series.shape), series.axes)
            array = series.asarray().reshape(shape)
    except Exception as exc:
        raise DataError(path, f"truncated or corrupt TIFF ({exc})") from exc
    if array.ndim == 2:
        return array[..., None]
    if _band_axis(array.shape, axes) == 0:
        array = np.moveaxis(array, 0, -1)
    return np.ascontiguousarray(array)


def read_tiff_header(path: str | Path) -> tuple[RasterHeader, str]:
    """Header of a TIFF and the library that decodes it (:data:`RASTERIO` or :data:`TIFFFILE`).

    Raises:
        DataError: not a readable TIFF.
    """
    path = Path(path)
    if rasterio_available():
        header = read_raster_header(path)
        if header is not None:
            return header, RASTERIO
    return _tifffile_header(path), TIFFFILE


def read_tiff(path: str | Path, header: RasterHeader, reader: str) -> np.ndarray:
    """Decode a TIFF as ``(H, W, C)`` in its stored dtype, every band kept.

    Args:
        path: the file.
        header: its header from :func:`read_tiff_header`.
        reader: the library that header chose.

    Raises:
        DataError: truncated or corrupt pixel data.
    """
    path = Path(path)
    if reader == RASTERIO:
        return read_raster(path, header)
    return _tifffile_read(path)
