"""``pixelseg check``: every broken case gets its exact problem; summary, exit codes, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.cli import main
from pixelseg.config import load_config
from pixelseg.data.check import check_command, check_dataset
from pixelseg.data.check_report import CheckReport
from pixelseg.data.class_weights import class_weights_from_counts
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.errors import ConfigError


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A 4-image synthetic RGB dataset; returns its config path."""
    return write_synthetic_semantic(tmp_path / "ds", n_images=4, size=32, seed=1)


def _check(config: Path, *overrides: str) -> CheckReport:
    return check_dataset(load_config(config, list(overrides)))


def _errors(report: CheckReport) -> list[str]:
    return [str(p) for p in report.errors]


def test_clean_dataset(dataset: Path) -> None:
    report = _check(dataset)
    assert report.ok and report.checked == 4 and report.image_sizes == {"32x32": 4}
    counts = np.zeros(4, np.int64)
    for name in ("000", "001", "002", "003"):
        mask = np.array(Image.open(dataset.parent / f"masks/{name}.png"))
        counts += np.bincount(mask[mask != 255], minlength=4)
    assert report.class_pixels == counts.tolist()
    assert report.majority_baseline == pytest.approx(counts.max() / counts.sum())


def test_corrupt_and_truncated_images(dataset: Path) -> None:
    root = dataset.parent
    (root / "images/001.png").write_bytes(b"\x89PNG garbage")
    data = (root / "images/002.png").read_bytes()
    (root / "images/002.png").write_bytes(data[: len(data) // 2])
    errors = _errors(_check(dataset))
    assert len(errors) == 2
    assert errors[0].startswith(f"{root}/images/001.png: not a readable image")
    assert errors[1].startswith(f"{root}/images/002.png: truncated or corrupt image data")


def test_wrong_size_rgb_mask_missing_mask(dataset: Path) -> None:
    root = dataset.parent
    Image.fromarray(np.zeros((16, 20), np.uint8)).save(root / "masks/000.png")
    colours = np.zeros((32, 32, 3), np.uint8)
    colours[..., 0] = 200
    Image.fromarray(colours).save(root / "masks/001.png")
    (root / "masks/003.png").unlink()
    errors = _errors(_check(dataset))
    assert errors == [
        f"{root}/masks/000.png: mask 000.png is 20x16 but image 000.png is 32x32 (width x height)",
        f"{root}/masks/001.png: RGB colour mask where class indices are expected "
        "(expected 0..3 or void 255); list the colours in data.palette",
        f"{root}/masks/003.png: missing mask for image 003.png",
    ]


def test_unknown_mask_values_and_palette_colours(dataset: Path) -> None:
    root = dataset.parent
    mask = np.array(Image.open(root / "masks/002.png"))
    mask[5, 5:8] = 7
    Image.fromarray(mask).save(root / "masks/002.png")
    errors = _errors(_check(dataset))
    assert errors == [
        f"{root}/masks/002.png: unknown mask values 7 (3 px); expected 0..3 or void 255"
    ]
    # the same masks as palette colours, one colour unknown
    palette = [(0, 0, 0), (0, 200, 0), (100, 100, 100), (255, 0, 0)]
    for name in ("000", "001", "002", "003"):
        indices = np.array(Image.open(root / f"masks/{name}.png"))
        rgb = np.zeros((*indices.shape, 3), np.uint8)
        for index, colour in enumerate(palette):
            rgb[indices == index] = colour
        rgb[indices == 7] = (1, 2, 3)
        rgb[indices == 255] = (255, 255, 255)
        Image.fromarray(rgb).save(root / f"masks/{name}.png")
    report = _check(
        dataset, f"data.palette={[list(c) for c in palette]}", "data.void_colour=[255,255,255]"
    )
    assert _errors(report) == [
        f"{root}/masks/002.png: unknown palette colours (1,2,3) (3 px); the palette has 4 classes"
    ]
    assert report.checked == 3 and report.ignored_pixels == 3 * (32 * 32 - 28 * 28)


def test_empty_dataset_and_missing_image_in_pairs(dataset: Path) -> None:
    root = dataset.parent
    assert _errors(_check(dataset, 'data.images="images/*.jpg"')) == [
        f"{root}: empty dataset: no samples from 'images/*.jpg'"
    ]
    (root / "pairs.txt").write_text("images/000.png masks/000.png\nimages/009.png masks/000.png\n")
    assert _errors(_check(dataset, 'data.pairs_file="pairs.txt"')) == [
        f"{root}/images/009.png: missing image file"
    ]


def test_duplicate_ids_and_absurd_dimensions(dataset: Path) -> None:
    root = dataset.parent
    Image.open(root / "images/000.png").save(root / "images/000.bmp")
    errors = _errors(_check(dataset, 'data.images="images/*"'))
    assert errors == [
        f"{root}/images/000.png: duplicate sample id '000' (also {root}/images/000.bmp)"
    ]
    errors = _errors(_check(dataset, "data.max_pixels=1000"))
    assert len(errors) == 4
    assert errors[0] == (
        f"{root}/images/000.png: image is 32x32 = 1024 pixels, above data.max_pixels = 1000 "
        "(a corrupt header or a file to tile first)"
    )


def test_exif_rotated_jpeg_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name, orientation in (("a", 1), ("b", 6)):
        img = Image.fromarray(np.full((20, 40, 3), 90, np.uint8))
        exif = img.getexif()
        exif[0x0112] = orientation
        img.save(tmp_path / f"images/{name}.jpg", exif=exif.tobytes())
        Image.fromarray(np.zeros((20, 40), np.uint8)).save(tmp_path / f"masks/{name}.png")
    config = tmp_path / "c.toml"
    config.write_text(
        '[data]\nimages = "images/*.jpg"\nclasses = ["x"]\n[data.split]\nmethod = "all"\n'
    )
    errors = _errors(check_dataset(load_config(config)))
    assert errors == [
        f"{tmp_path}/masks/b.png: image {tmp_path}/images/b.jpg is rotated by its EXIF "
        f"orientation (6) to 20x40, but mask {tmp_path}/masks/b.png matches only the unrotated "
        "image (40x20); rotate the mask or strip the EXIF tag"
    ]


def test_exit_codes_json_and_cli(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_command(dataset) == 0  # imbalance is only a warning
    out = capsys.readouterr().out
    assert "majority-class pixel accuracy baseline" in out and "building" in out
    assert 'loss.name = "auto" gives "dice_ce" with class_weighting "median"' in out
    assert check_command(dataset, strict=True) == 1
    capsys.readouterr()
    assert check_command(dataset, json_path="-") == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is True and report["recommended_loss"] == "dice_ce"
    assert "building" in report["rare_classes"] and "pixelseg check" in captured.err
    json_file = dataset.parent / "out/report.json"
    (dataset.parent / "masks/000.png").unlink()
    assert main(["check", str(dataset), "--json", str(json_file)]) == 1
    written = json.loads(json_file.read_text())
    assert written["ok"] is False and written["errors"][0]["problem"].startswith("missing mask")
    assert "error:" in capsys.readouterr().out
    assert main(["check", str(dataset.parent / "none.toml")]) == 1
    assert capsys.readouterr().err.strip().endswith("none.toml: config file not found")


def test_class_weights_median_and_inverse() -> None:
    counts = [1000, 100, 10, 0]
    freq = np.array([1000, 100, 10]) / 1110
    for method, raw in (("median", np.median(freq) / freq), ("inverse", 1 / freq)):
        expected = np.clip(raw / raw.mean(), 0.1, 10)
        weights = class_weights_from_counts(counts, method=method)
        assert weights.dtype == torch.float32 and weights.shape == (4,)
        np.testing.assert_allclose(weights[:3].numpy(), expected, rtol=1e-6)
        assert weights[3] == 1.0
    balanced = class_weights_from_counts(torch.tensor([5, 5, 5]))
    assert torch.equal(balanced, torch.ones(3))
    with pytest.raises(ConfigError, match="no labelled pixels"):
        class_weights_from_counts([0, 0])
    with pytest.raises(ConfigError, match="not one of"):
        class_weights_from_counts([1, 2], method="sqrt")
