"""Sliding-window prediction: tiles cover the image, blend exactly, and agree with one pass."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.cli import main
from pixelseg.errors import ConfigError
from pixelseg.inference.predict import parse_tile
from pixelseg.inference.predictor import Predictor
from pixelseg.inference.tiling import (
    WHOLE_IMAGE_PIXELS,
    TileSpec,
    choose_tiles,
    gaussian_window,
    predict_tiled,
    tile_starts,
    tiles_of,
)
from pixelseg.structures import SemanticPrediction


@pytest.mark.parametrize("length", [1, 31, 64, 65, 100, 127, 128, 129, 300, 1000])
@pytest.mark.parametrize(("size", "overlap"), [(64, 16), (64, 0), (128, 96)])
def test_tiles_cover_the_axis_with_steps_no_longer_than_asked(
    length: int, size: int, overlap: int
) -> None:
    starts = tile_starts(length, size, overlap)
    tile = min(size, length)
    assert starts[0] == 0 and starts[-1] + tile == length  # flush with both edges
    assert all(0 < b - a <= size - overlap for a, b in itertools.pairwise(starts))
    covered = np.zeros(length, bool)
    for start in starts:
        covered[start : start + tile] = True
    assert covered.all()


def test_gaussian_window_peaks_in_the_centre_and_has_no_zero() -> None:
    window = gaussian_window(64, 96)
    assert window.shape == (64, 96) and float(window.max()) == pytest.approx(1.0, abs=1e-3)
    assert float(window.min()) > 0 and float(window[0, 0]) < 0.01
    assert torch.equal(window, window.flip(0)) and torch.equal(window, window.flip(1))


def test_a_per_pixel_model_blends_back_to_its_whole_image_output() -> None:
    # A model whose output at a pixel depends on that pixel alone gives the same output in every
    # tile, so the blend must return it exactly: the weights and offsets add up.
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, kernel_size=1)
    image = torch.randn(3, 150, 173)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return conv(batch).softmax(1)

    seen: list[int] = []
    blended = predict_tiled(forward, image, TileSpec(64, 20, batch=3), on_batch=seen.append)
    torch.testing.assert_close(blended, forward(image[None])[0], atol=1e-6, rtol=0)
    assert sum(seen) == len(tiles_of(150, 173, TileSpec(64, 20))) == 3 * 4


def test_auto_tiles_only_large_images() -> None:
    small, large = (4096, 4096), (4097, 4096)
    assert WHOLE_IMAGE_PIXELS == 4096 * 4096
    assert choose_tiles("auto", size=small, crop_size=384) is None
    assert choose_tiles("auto", size=large, crop_size=384) == TileSpec(768, 192)
    assert choose_tiles("off", size=large, crop_size=384) is None
    assert choose_tiles(TileSpec(64, 16), size=(64, 64), crop_size=384) is None
    assert choose_tiles(TileSpec(64, 16), size=(64, 65), crop_size=384) == TileSpec(64, 16)
    with pytest.raises(ConfigError, match="tile must be 'auto', 'off'"):
        choose_tiles("big", size=small, crop_size=8)


def test_tile_options_are_parsed_or_refused_in_one_line() -> None:
    assert parse_tile("auto", None) == "auto" and parse_tile("off", None) == "off"
    assert parse_tile("256", None) == TileSpec(256, 64)
    assert parse_tile("256", 32) == TileSpec(256, 32)
    for tile, overlap, message in [
        ("big", None, "expected auto, off or a tile size"),
        ("16", None, "at least 32"),
        ("64", 64, r"overlap must be in \[0, 64\)"),
        ("auto", 8, "needs a tile size"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_tile(tile, overlap)


def test_tiled_prediction_agrees_with_one_pass(trained: tuple[Path, Path]) -> None:
    run_dir, image = trained
    whole = Predictor.from_run(run_dir, tile="off").predict(image)
    tiled = Predictor.from_run(run_dir, tile=TileSpec(64, 32)).predict(image)
    assert isinstance(whole, SemanticPrediction) and isinstance(tiled, SemanticPrediction)
    assert tiled.probs.shape == whole.probs.shape == (4, 200, 200)
    torch.testing.assert_close(tiled.probs.sum(0), torch.ones(200, 200))
    agreement = float((tiled.label_map == whole.label_map).float().mean())
    assert agreement >= 0.99, f"tiled and whole-image labels agree on {agreement:.4f}"


def test_predict_command_tiles_when_asked(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, image = trained
    args = ["predict", str(run_dir), str(image), "--tile", "64", "--tile-overlap", "16"]
    assert main([*args, "--out", str(tmp_path / "tiled")]) == 0
    labels = np.asarray(Image.open(tmp_path / "tiled" / f"{image.stem}_label.png"))
    expected = Predictor.from_run(run_dir, tile=TileSpec(64, 16)).predict(image)
    assert isinstance(expected, SemanticPrediction)
    assert np.array_equal(labels, expected.label_map.numpy().astype(labels.dtype))
