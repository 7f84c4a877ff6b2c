"""Soft and anti-aliased binary masks (``data.mask_threshold``), void colours, RGBA images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image
from rich.console import Console

import pixelseg.data.io as io_module
import pixelseg.data.loading as loading_module
import pixelseg.data.plan as plan_module
from pixelseg.config import load_config
from pixelseg.data.build import build_datasets
from pixelseg.data.check import check_dataset
from pixelseg.data.check_report import CheckReport, print_report
from pixelseg.errors import ConfigError
from pixelseg.train import train

RNG = np.random.default_rng(5)
SIZE = 32
TINY = [
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    "train.epochs=1",
    "train.samples_per_epoch=8",
    "train.batch_size=4",
    "train.crop_size=32",
    "train.warmup_steps=1",
]


def _write_config(root: Path, data: str) -> Path:
    config = root / "config.toml"
    config.write_text(
        f'task = "semantic"\n[data]\nroot = "."\n{data}\n'
        '[data.split]\nmethod = "range"\ntrain = ["0-2"]\nval = ["3"]\n'
    )
    return config


def _antialiased_masks(root: Path, high: int = 237) -> list[np.ndarray]:
    """Four RGB images with discs drawn anti-aliased: 0 outside, ``high`` inside, shades between."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    masks = []
    for index in range(4):
        distance = np.hypot(yy - 15.3, xx - 16.7)
        coverage = np.clip(7.5 + index - distance, 0.0, 1.0)
        mask = np.round(coverage * high).astype(np.uint8)
        for folder, array in (
            ("images", RNG.integers(0, 255, (SIZE, SIZE, 3), np.uint8)),
            ("masks", mask),
        ):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(array).save(root / folder / f"{index:03d}.png")
        masks.append(mask)
    return masks


def _errors(report: CheckReport) -> list[str]:
    return [str(p) for p in report.errors]


def test_antialiased_mask_refused_with_the_threshold_suggested(tmp_path: Path) -> None:
    masks = _antialiased_masks(tmp_path)
    config = _write_config(tmp_path, 'classes = ["background", "disc"]')
    errors = _errors(check_dataset(load_config(config)))
    assert len(errors) == 4
    first = errors[0]
    shades = len(np.unique(masks[0])) - 2
    assert first.startswith(f"{tmp_path}/masks/000.png: unknown mask values 237 (")
    assert "expected 0..1 or void 255" in first
    assert (
        f"it looks anti-aliased (values 0 and 237 with {shades} other values between them): "
        "for a binary mask set data.mask_threshold = 118.5" in first
    )
    # the two class values named in mask_values, the shades between them
    listed = 'classes = ["background", "disc"]\nmask_values = [0, 237]'
    errors = _errors(check_dataset(load_config(_write_config(tmp_path, listed))))
    assert len(errors) == 4 and "data.mask_threshold = 118.5" in errors[0]


def test_threshold_reads_the_antialiased_masks_and_trains(tmp_path: Path) -> None:
    masks = _antialiased_masks(tmp_path)
    data = 'classes = ["background", "disc"]\nmask_threshold = 118.5'
    config = load_config(_write_config(tmp_path, data), TINY)
    report = check_dataset(config)
    assert report.ok, report.errors
    every = np.stack(masks)
    assert report.class_pixels == [int((every < 118.5).sum()), int((every >= 118.5).sum())]
    val = build_datasets(config)["val"]
    np.testing.assert_array_equal(val[0].mask[:SIZE, :SIZE].numpy(), masks[3] >= 118.5)
    summary = train(config, tmp_path / "run")
    assert summary.steps >= 1


def test_soft_float_mask_suggests_and_takes_a_threshold(tmp_path: Path) -> None:
    _antialiased_masks(tmp_path)
    for index in range(4):
        soft = np.array(Image.open(tmp_path / f"masks/{index:03d}.png"), np.float32) / 237
        tifffile.imwrite(tmp_path / f"masks/{index:03d}.tif", soft)
    data = 'classes = ["background", "disc"]\nmasks = "masks/{stem}.tif"'
    errors = _errors(check_dataset(load_config(_write_config(tmp_path, data))))
    assert errors[0].startswith(f"{tmp_path}/masks/000.tif: mask holds non-integer values")
    assert "data.mask_threshold = 0.5" in errors[0]
    report = check_dataset(load_config(_write_config(tmp_path, data + "\nmask_threshold = 0.5")))
    assert report.ok and report.class_pixels[1] > 0


def test_threshold_needs_two_classes_between_the_mask_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.mask_threshold: only for binary masks"):
        load_config(_write_config(tmp_path, 'classes = ["a", "b", "c"]\nmask_threshold = 128'))
    bad = 'classes = ["a", "b"]\nmask_values = [0, 100]\nmask_threshold = 150'
    with pytest.raises(ConfigError, match=r"does not lie between data.mask_values \[0, 100\]"):
        load_config(_write_config(tmp_path, bad))


def test_several_void_colours(tmp_path: Path) -> None:
    palette = [(60, 16, 152), (254, 221, 58)]
    voids = [(0, 0, 0), (155, 155, 155)]
    for index in range(4):
        choice = RNG.integers(0, 4, (SIZE, SIZE))
        mask = np.array(palette + voids, np.uint8)[choice]
        for folder, array in (
            ("images", RNG.integers(0, 255, (SIZE, SIZE, 3), np.uint8)),
            ("masks", mask),
        ):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(array).save(tmp_path / folder / f"{index:03d}.png")
    base = 'classes = ["building", "vegetation"]\npalette = [[60, 16, 152], [254, 221, 58]]\n'
    one = _errors(
        check_dataset(load_config(_write_config(tmp_path, base + "void_colour = [0, 0, 0]")))
    )
    assert len(one) == 4 and "unknown palette colours (155,155,155)" in one[0]
    for extra in (
        "void_colours = [[0, 0, 0], [155, 155, 155]]",
        "void_colour = [0, 0, 0]\nvoid_colours = [[155, 155, 155]]",
    ):
        report = check_dataset(load_config(_write_config(tmp_path, base + extra)))
        assert report.ok, report.errors
        assert report.ignored_pixels + report.labelled_pixels == 4 * SIZE * SIZE
        assert report.ignored_pixels > SIZE * SIZE  # about half of the pixels are void


def test_check_says_when_alpha_is_dropped_without_decoding_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _antialiased_masks(tmp_path)
    for index in (0, 2):
        rgb = np.array(Image.open(tmp_path / f"images/{index:03d}.png"))
        rgba = np.dstack([rgb, np.full((SIZE, SIZE), 128, np.uint8)])
        Image.fromarray(rgba).save(tmp_path / f"images/{index:03d}.png")
    decodes: list[str] = []
    original = io_module.read_image

    def counting(path: Any, **kwargs: Any) -> np.ndarray:
        decodes.append(Path(path).name)
        return original(path, **kwargs)

    for module in (io_module, loading_module, plan_module):
        monkeypatch.setattr(module, "read_image", counting)
    config = load_config(_write_config(tmp_path, 'classes = ["a", "b"]\nmask_threshold = 100'))
    report = check_dataset(config)
    assert report.ok and report.rgba_pngs == 2
    assert sorted(decodes) == ["000.png", "001.png", "002.png", "003.png"]
    console = Console(record=True, width=120)
    print_report(report, console)
    assert "2 images are RGBA PNGs: alpha dropped" in console.export_text()
