"""Class probability maps as GeoTIFFs: float32, float16 or uint8, nodata marked.

``pixelseg predict --probabilities`` writes ``<stem>_probs.tif``, one band per class named after
it, georeferenced like the input when it is. ``--probability-dtype float16`` halves the file
(GDAL's 16-bit floats, read back as float32, about three significant digits); ``uint8`` stores
``round(p * 254)`` with the band scale ``1/254`` in the file (QGIS and ``rasterio``'s
``scales`` give the probability back within ``1/508``), 255 marking nodata.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelseg.data.raster import write_geotiff
from pixelseg.inference.prepared import PreparedImage


def probabilities_path(out: Path, image_path: Path) -> Path:
    """Where the class probabilities of ``image_path`` go: ``<stem>_probs.tif``."""
    return out / f"{image_path.stem}_probs.tif"


#: How probability maps are stored: float32, float16 (half the size, about 3 significant
#: digits) or uint8 (``round(p * 254)``, 255 on nodata, the band scale 1/254 in the file).
PROBABILITY_DTYPES = ("float32", "float16", "uint8")
#: The uint8 maps' step: 254 levels, so that 255 is free for nodata.
UINT8_LEVELS = 254


def write_probabilities(
    path: Path,
    probs: np.ndarray,
    prepared: PreparedImage,
    names: list[str],
    *,
    dtype: str = "float32",
) -> Path:
    """``(K, H, W)`` probabilities as a GeoTIFF in ``dtype`` (:data:`PROBABILITY_DTYPES`):
    float bands hold NaN (their nodata value) on nodata pixels, uint8 bands 255."""
    if dtype not in PROBABILITY_DTYPES:
        raise ValueError(f"probability dtype must be one of {PROBABILITY_DTYPES}, got {dtype!r}")
    if len(names) != len(probs):
        names = [f"class {k}" for k in range(len(probs))]
    if dtype == "uint8":
        levels = np.rint(np.clip(probs, 0.0, 1.0) * UINT8_LEVELS).astype(np.uint8)
        if prepared.nodata is not None:
            levels[:, prepared.nodata] = 255
        return write_geotiff(
            path, levels, georef=prepared.georef, nodata=255, descriptions=names,
            scale=1.0 / UINT8_LEVELS,
        )  # fmt: skip
    bands = np.array(probs, dtype=np.float32, copy=True)
    if prepared.nodata is not None:
        bands[:, prepared.nodata] = np.nan
    return write_geotiff(
        path, bands, georef=prepared.georef, nodata=float("nan"), descriptions=names,
        half=dtype == "float16",
    )  # fmt: skip


@dataclass(frozen=True)
class ProbabilityMaps:
    """Whether and how an output folder's probability maps are written.

    Attributes:
        enabled: write them (``--probabilities``).
        dtype: one of :data:`PROBABILITY_DTYPES`.
        names: the band names (the classes).
    """

    enabled: bool
    dtype: str
    names: list[str]

    def exist(self, image_path: Path, label_path: Path) -> bool:
        """True when none are asked for, or the image's map is there."""
        return not self.enabled or probabilities_path(label_path.parent, image_path).exists()

    def write(
        self, image_path: Path, label_path: Path, probs: np.ndarray, prepared: PreparedImage
    ) -> None:
        """The image's ``(K, H, W)`` map beside its label image, when enabled."""
        if self.enabled:
            path = probabilities_path(label_path.parent, image_path)
            write_probabilities(path, probs, prepared, self.names, dtype=self.dtype)
