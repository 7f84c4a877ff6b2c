"""Synthetic data: written as real files, imbalanced, readable by the real pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixelseg.config import load_config
from pixelseg.data.build import build_datasets, class_pixel_counts
from pixelseg.data.check import check_dataset
from pixelseg.data.io import read_header, read_image
from pixelseg.data.synthetic import CLASSES, write_synthetic_semantic


def test_rgb_variant_is_imbalanced_and_checks(tmp_path: Path) -> None:
    path = write_synthetic_semantic(tmp_path / "rgb", n_images=6, size=48, seed=3)
    config = load_config(path)
    report = check_dataset(config)
    assert report.ok and report.checked == 6
    assert report.split_counts == {"train": 4, "val": 2, "test": 0}
    freq = dict(zip(CLASSES, report.class_frequencies))
    assert freq["building"] < 0.02 and freq["background"] > 0.5
    assert report.recommended_loss == "dice_ce" and "building" in report.rare_classes
    assert report.ignored_pixels == 6 * (48 * 48 - 44 * 44)  # the 2-pixel void frame
    datasets = build_datasets(config)
    sample = datasets["train"][0]
    assert sample.image.shape == (3, 32, 32)  # crop_size from the generated config


def test_same_seed_same_files(tmp_path: Path) -> None:
    a = write_synthetic_semantic(tmp_path / "a", n_images=2, size=32, seed=5).parent
    b = write_synthetic_semantic(tmp_path / "b", n_images=2, size=32, seed=5).parent
    c = write_synthetic_semantic(tmp_path / "c", n_images=2, size=32, seed=6).parent
    assert (a / "images/001.png").read_bytes() == (b / "images/001.png").read_bytes()
    assert (a / "images/001.png").read_bytes() != (c / "images/001.png").read_bytes()


def test_multiband_geotiff_variant(tmp_path: Path) -> None:
    path = write_synthetic_semantic(tmp_path / "mb", n_images=4, size=32, variant="multiband")
    header = read_header(tmp_path / "mb/images/000.tif")
    assert (header.bands, header.dtype, header.nodata) == (6, "uint16", 0.0)
    config = load_config(path)
    report = check_dataset(config)
    assert report.ok and report.image_kinds == {"6 x uint16": 4}
    assert report.ignored_pixels == 2 * 32 * 4  # nodata strips of images 000 and 002
    datasets = build_datasets(config)
    norm = datasets["train"].normalizer
    assert norm is not None and norm.bands == 6
    # statistics of the train split (000-002), nodata excluded
    pixels = []
    for name in ("000", "001", "002"):
        image = read_image(tmp_path / f"mb/images/{name}.tif").reshape(-1, 6)
        pixels.append(image[(image != 0).any(axis=1)])
    every = np.concatenate(pixels).astype(np.float64)
    np.testing.assert_allclose(norm.mean, every.mean(0), rtol=1e-6)
    np.testing.assert_allclose(norm.std, every.std(0), rtol=1e-6)
    sample = datasets["val"][0]
    assert sample.image.shape == (6, 32, 32) and torch.isfinite(sample.image).all()
    counts = class_pixel_counts(config)
    assert counts.sum() == sum(report.train_class_pixels) and counts[3] > 0


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="variant"):
        write_synthetic_semantic(tmp_path, variant="hyperspectral")
