"""Rasters too large for memory: streamed window by window, the same labels as in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelseg.data.io import ImageHeader
from pixelseg.inference import streaming
from pixelseg.inference.outputs import unlabelled_value
from pixelseg.inference.predict import predict_files
from pixelseg.inference.predictor import Predictor
from pixelseg.inference.tiling import TileSpec
from pixelseg.structures import SemanticPrediction

rasterio = pytest.importorskip("rasterio")


def write_scene(path: Path, rgb: np.ndarray) -> None:
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    height, width, _ = rgb.shape
    with rasterio.open(
        path, "w", driver="GTiff", height=height, width=width, count=3, dtype="uint8",
        crs=CRS.from_epsg(32633), transform=from_origin(500000, 4000000, 10, 10), nodata=0,
    ) as dst:  # fmt: skip
        dst.write(rgb.transpose(2, 0, 1))


def test_a_streamed_raster_gets_the_in_memory_tiled_labels_in_place(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, image = trained
    rgb = np.asarray(Image.open(image).convert("RGB"))[:190, :170].copy()
    rgb[rgb == 0] = 1
    rgb[:, :9] = 0  # a nodata strip (0 in every band, the file's nodata value)
    scene = tmp_path / "scene.tif"
    write_scene(scene, rgb)
    monkeypatch.setattr(streaming, "STREAM_PIXELS", 100 * 100)
    spec = TileSpec(64, 16, batch=1)  # the same batches both ways: bitwise the same tiles
    predictor = Predictor.from_run(run_dir, tile=spec, precision="fp32")
    assert predict_files(predictor, [scene], tmp_path / "out") == (1, 0)
    label_path = tmp_path / "out" / "scene_label.tif"
    assert not (tmp_path / "out" / "scene_overlay.png").exists()  # labels only
    expected = Predictor.from_run(run_dir, tile=spec, precision="fp32").predict(scene)
    assert isinstance(expected, SemanticPrediction)
    unlabelled = unlabelled_value(predictor.ignore_index)
    expected_labels = expected.label_map.numpy()
    expected_labels = np.where(
        expected_labels == predictor.ignore_index, unlabelled, expected_labels
    )
    with rasterio.open(label_path) as src, rasterio.open(scene) as ref:
        assert src.crs == ref.crs and src.transform == ref.transform
        assert src.nodata == unlabelled and src.dtypes == ("uint8",)
        labels = src.read(1)
    assert (labels[:, :9] == unlabelled).all()
    assert np.array_equal(labels, expected_labels)
    # Done means done: the rerun skips it.
    assert predict_files(predictor, [scene], tmp_path / "out") == (0, 1)


def test_rasters_the_predictor_would_tile_are_streamed_unless_tiling_is_off() -> None:
    side = 8192  # the benchmark's large scene: tiled, hence streamed, not decoded whole
    scene = ImageHeader(side, side, 3, "uint8", reader="rasterio")
    assert streaming.streams(scene, semantic=True)
    assert not streaming.streams(scene, semantic=True, tile="off")  # asked to run it whole
    assert not streaming.streams(scene, semantic=False)  # objects are merged in memory
    assert not streaming.streams(ImageHeader(side, side, 3, "uint8"), semantic=True)  # a PNG
    small = ImageHeader(4096, 4096, 3, "uint8", reader="rasterio")
    assert not streaming.streams(small, semantic=True)  # predicted whole, as in memory
