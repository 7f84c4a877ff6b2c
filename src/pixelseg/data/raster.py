"""Georeferenced rasters through rasterio (GDAL): TIFFs read with CRS, transform and nodata, and
predictions written as GeoTIFFs that lie where their input lies.

A TIFF holding one image (any band count; uint8, uint16, int16, float32...; any compression GDAL
decodes) is read here; a stack of pages (what ``tifffile.imwrite`` makes of a 3-D grey array) has
no single GDAL dataset, so :mod:`pixelseg.data.io` reads it with tifffile, each page a band.
Without rasterio installed, tifffile reads every TIFF (no georeferencing is then known).
Every failure is a :class:`~pixelseg.errors.DataError` naming the file; every write is atomic.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelseg.errors import DataError
from pixelseg.files import atomic_write

#: The six affine coefficients ``(a, b, c, d, e, f)``: ``x = a*col + b*row + c``,
#: ``y = d*col + e*row + f`` (rasterio's and GDAL's convention, pixel corners).
Transform = tuple[float, float, float, float, float, float]
_IDENTITY: Transform = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def rasterio_available() -> bool:
    """Whether rasterio can be imported (it is a dependency; a bare environment may lack it)."""
    return importlib.util.find_spec("rasterio") is not None


@dataclass(frozen=True)
class GeoReference:
    """Where a raster lies on the Earth.

    Attributes:
        crs: the coordinate reference system as WKT, or ``None`` when the file names none.
        transform: pixel to CRS coordinates (see :data:`Transform`).
    """

    crs: str | None
    transform: Transform


@dataclass(frozen=True)
class RasterHeader:
    """What GDAL reads from a raster's header, before any pixel is decoded.

    Attributes:
        height: rows.
        width: columns.
        bands: band count.
        dtype: numpy dtype name of the bands, e.g. ``"uint16"``.
        nodata: the nodata value GDAL reports (NaN possible), or ``None``.
        georef: CRS and transform, or ``None`` for a plain (not georeferenced) image.
    """

    height: int
    width: int
    bands: int
    dtype: str
    nodata: float | None
    georef: GeoReference | None


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence rasterio's warning that a plain image has no georeferencing (that is normal)."""
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def _georeference(src: Any) -> GeoReference | None:
    a, b, c, d, e, f = (float(v) for v in tuple(src.transform)[:6])
    transform: Transform = (a, b, c, d, e, f)
    crs = src.crs.to_wkt() if src.crs is not None else None
    if crs is None and transform == _IDENTITY:
        return None
    return GeoReference(crs, transform)


def read_raster_header(path: str | Path) -> RasterHeader | None:
    """Read a TIFF's size, bands, dtype, nodata and georeferencing with GDAL.

    Returns:
        The header, or ``None`` for a stack of pages (GDAL sees each page as a sub-dataset:
        tifffile reads those).

    Raises:
        DataError: GDAL cannot open the file.
    """
    import rasterio

    try:
        with _quiet(), rasterio.open(path) as src:
            if src.subdatasets:
                return None
            dtypes = set(src.dtypes)
            if len(dtypes) != 1:
                raise DataError(path, f"bands of different types {sorted(dtypes)}")
            nodata = None if src.nodata is None else float(src.nodata)
            return RasterHeader(
                int(src.height),
                int(src.width),
                int(src.count),
                dtypes.pop(),
                nodata,
                _georeference(src),
            )
    except DataError:
        raise
    except Exception as exc:
        raise DataError(path, f"not a readable TIFF ({exc})") from exc


def read_raster(path: str | Path, header: RasterHeader) -> np.ndarray:
    """Decode every band of a raster as ``(H, W, C)`` in its stored dtype.

    Args:
        path: the file.
        header: its :func:`read_raster_header`, which the pixels must match.

    Raises:
        DataError: truncated or corrupt pixel data.
    """
    import rasterio

    try:
        with _quiet(), rasterio.open(path) as src:
            bands = src.read()
    except Exception as exc:
        raise DataError(path, f"truncated or corrupt TIFF ({exc})") from exc
    if bands.shape != (header.bands, header.height, header.width):
        raise DataError(path, f"pixel data {bands.shape} do not match the header")
    return np.ascontiguousarray(np.moveaxis(bands, 0, -1))


def _colormap(palette: Sequence[Sequence[int]]) -> dict[int, tuple[int, int, int, int]]:
    return {k: (int(c[0]), int(c[1]), int(c[2]), 255) for k, c in enumerate(palette)}


def write_geotiff(
    path: str | Path,
    bands: np.ndarray,
    *,
    georef: GeoReference | None,
    nodata: float | None = None,
    descriptions: Sequence[str] = (),
    palette: Sequence[Sequence[int]] = (),
    half: bool = False,
    scale: float | None = None,
) -> Path:
    """Write ``(C, H, W)`` (or ``(H, W)``) bands as a deflate-compressed GeoTIFF, atomically.

    Args:
        path: destination ``.tif``.
        bands: the pixels, in the dtype to store (one dtype for every band, as GeoTIFF needs).
        georef: the input's CRS and transform (the output lies where the input lies), or
            ``None`` for a plain TIFF.
        nodata: the value that marks pixels without data (NaN for float bands), or ``None``.
        descriptions: one name per band (shown by QGIS), or none.
        palette: RGB colours of the values ``0..K-1`` of a single 8/16-bit band, or none.
        half: store float32 bands as 16-bit floats (GDAL's ``NBITS=16``; read back as float32).
        scale: the stored values times ``scale`` are the real ones (GDAL's band scale, applied
            by QGIS and ``rasterio``'s ``scales``), or ``None``.

    Returns:
        The destination path.
    """
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS

    array = bands[None] if bands.ndim == 2 else bands
    options: dict[str, Any] = {
        "driver": "GTiff",
        "height": int(array.shape[1]),
        "width": int(array.shape[2]),
        "count": int(array.shape[0]),
        "dtype": str(array.dtype),
        "compress": "deflate",
    }
    if georef is not None:
        options["transform"] = Affine(*georef.transform)
        if georef.crs is not None:
            options["crs"] = CRS.from_wkt(georef.crs)
    if nodata is not None:
        options["nodata"] = nodata
    if half:
        if array.dtype != np.float32:
            raise ValueError(f"half needs float32 bands, got {array.dtype}")
        options["nbits"] = 16

    def write(tmp: Path) -> None:
        # No .aux.xml beside the temporary file: everything goes into the TIFF's own tags.
        with (
            _quiet(),
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            rasterio.open(tmp, "w", **options) as dst,
        ):
            dst.write(array)
            for index, name in enumerate(descriptions, start=1):
                dst.set_band_description(index, name)
            if palette and array.shape[0] == 1 and array.dtype in (np.uint8, np.uint16):
                dst.write_colormap(1, _colormap(palette))
            if scale is not None:
                dst.scales = (scale,) * array.shape[0]

    return atomic_write(path, write)
