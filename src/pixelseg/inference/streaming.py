"""Rasters too large for memory, predicted window by window (semantic runs).

A TIFF / GeoTIFF of more than :data:`STREAM_PIXELS` pixels is never decoded whole: it is read
one row of tiles at a time (a window of ``tile`` rows across the full width, ``rasterio``),
normalised and checked as a whole image would be, its tiles predicted and blended into an
accumulator that holds only the rows still open, and each band of rows that no later tile
touches is written to the output GeoTIFF (tiled, deflate, the input's CRS and transform, the
class colours as its colour table) and dropped. Memory: one strip of the input, its
normalised copy and the ``(K, tile, W)`` accumulator — for a 20000-px-wide RGB scene and
512-px tiles about 0.5 GB, whatever its height. The tiles, their order and the blending are
those of :func:`~pixelseg.inference.tiling.predict_tiled`, so the labels equal the in-memory
tiled prediction's. No overlay or probability map is written for a streamed raster.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pixelseg.data.io import ImageHeader
from pixelseg.engine.padding import class_argmax
from pixelseg.files import atomic_write
from pixelseg.inference.predictor import Predictor
from pixelseg.inference.prepared import print_warning
from pixelseg.inference.tiling import WHOLE_IMAGE_PIXELS, TileSpec, gaussian_window, tile_grid
from pixelseg.inference.tta import with_tta

#: Rasters with more pixels than this are streamed: those the Predictor would tile anyway
#: (:data:`~pixelseg.inference.tiling.WHOLE_IMAGE_PIXELS`), so an 8192² scene runs in one strip
#: of memory, not as a decoded image, its probabilities and its labels (over 1 GB each).
STREAM_PIXELS = WHOLE_IMAGE_PIXELS


def streams(header: ImageHeader, *, semantic: bool, tile: object = "auto") -> bool:
    """Whether an image of ``header`` is predicted window by window (a semantic run's raster
    that ``rasterio`` reads, over :data:`STREAM_PIXELS`, unless ``tile`` is ``"off"``)."""
    big = header.height * header.width > STREAM_PIXELS
    return semantic and header.reader == "rasterio" and big and tile != "off"


def predict_streamed(
    predictor: Predictor,
    path: Path,
    header: ImageHeader,
    label_path: Path,
    spec: TileSpec,
    *,
    unlabelled: int,
    palette: list[list[int]] | list[tuple[int, int, int]],
    on_rows: Callable[[int, int], None] | None = None,
) -> Path:
    """Predict the raster at ``path`` strip by strip into the label GeoTIFF ``label_path``.

    Args:
        predictor: a semantic run's Predictor (its plan is measured on the first strip).
        path: the input TIFF / GeoTIFF.
        header: its header (size, nodata value, georeferencing).
        label_path: the output (written atomically: it exists only when whole).
        spec: tile size, overlap and batch.
        unlabelled: the value of nodata pixels in the label image (also its nodata value).
        palette: the class colours.
        on_rows: called with ``(rows done, height)`` after each band of rows is written.

    Raises:
        DataError: as :meth:`Predictor.prepare_array` for any strip.
    """
    import rasterio
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.windows import Window

    height, width = header.height, header.width
    rows, cols, tile_h, tile_w = tile_grid(height, width, spec)
    window = gaussian_window(tile_h, tile_w)
    ignore_index = predictor.ignore_index
    options = {
        "driver": "GTiff", "height": height, "width": width, "count": 1, "dtype": "uint8",
        "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256,
        "nodata": unlabelled,
    }  # fmt: skip
    if header.georef is not None:
        options["transform"] = Affine(*header.georef.transform)
        if header.georef.crs is not None:
            options["crs"] = CRS.from_wkt(header.georef.crs)

    def write(tmp: Path) -> None:
        with (
            rasterio.Env(GDAL_PAM_ENABLED="NO"),
            rasterio.open(path) as src,
            rasterio.open(tmp, "w", **options) as dst,
        ):
            dst.write_colormap(1, {k: (*map(int, c[:3]), 255) for k, c in enumerate(palette)})
            # Rows [top, top + tile_h) of the blend: the rows above are written and dropped.
            total = torch.zeros(len(predictor.class_names), tile_h, width)
            weight = torch.zeros(tile_h, width)
            for index, top in enumerate(rows):
                strip = src.read(window=Window(0, top, width, tile_h)).transpose(1, 2, 0)
                prepared = predictor.prepare_array(
                    strip, path=path, file_nodata=header.nodata, drift=index == 0
                )
                for message in prepared.warnings:  # the first strip's band statistics
                    print_warning(message)
                predictor.plan_for(prepared.normalized)
                forward = _forward(predictor)
                for first in range(0, len(cols), spec.batch):
                    lefts = cols[first : first + spec.batch]
                    batch = torch.stack([prepared.normalized[:, :, x : x + tile_w] for x in lefts])
                    for x, tile_probs in zip(lefts, forward(batch).float()):
                        total[:, :, x : x + tile_w] += tile_probs * window
                        weight[:, x : x + tile_w] += window
                done = (rows[index + 1] if index + 1 < len(rows) else height) - top
                labels = class_argmax(total[:, :done] / weight[:done]).numpy()
                labels = np.where(labels == ignore_index, unlabelled, labels)
                if prepared.nodata is not None:
                    labels[prepared.nodata[:done]] = unlabelled
                dst.write(labels.astype(np.uint8), 1, window=Window(0, top, width, done))
                total = torch.cat([total[:, done:], torch.zeros(total.shape[0], done, width)], 1)
                weight = torch.cat([weight[done:], torch.zeros(done, width)])
                if on_rows is not None:
                    on_rows(top + done, height)

    return atomic_write(label_path, write)


def _forward(predictor: Predictor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The Predictor's dense forward on a batch of tiles (averaged over symmetries with TTA)."""

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return predictor.task.dense_forward(predictor.model, batch, autocast=predictor.autocast)

    return with_tta(forward) if predictor.tta else forward


def predict_streamed_file(
    predictor: Predictor, path: Path, header: ImageHeader, label_path: Path
) -> None:
    """``pixelseg predict`` of a raster too large for memory: :func:`predict_streamed` with
    the Predictor's tiles (default: from the training crop), labels only, said on the console."""
    from rich.console import Console

    from pixelseg.inference.outputs import unlabelled_value

    tile = predictor.tile
    if not isinstance(tile, TileSpec):
        crop = predictor.config.train.crop_size if predictor.config is not None else None
        tile = TileSpec.from_crop(crop)
    Console(stderr=True, highlight=False).print(
        f"{path}: streamed window by window in {tile.size}-px tiles (too large for memory); "
        "label image only, no overlay or probabilities",
        soft_wrap=True,
    )
    predict_streamed(
        predictor,
        path,
        header,
        label_path,
        tile,
        unlabelled=unlabelled_value(predictor.ignore_index),
        palette=predictor.info.palette,
    )
