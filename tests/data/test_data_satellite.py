"""Satellite-style data: tile folders with spaces, samples skipped for errors, NaN nodata,
negative void labels, and the three shipped satellite configs on the shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from conftest import CONFIGS, shared_dataset
from pixelseg.config import load_config
from pixelseg.data.build import build_datasets
from pixelseg.data.check import check_dataset
from pixelseg.data.check_report import CheckReport, exit_code
from pixelseg.data.folder import find_samples
from pixelseg.data.splits import assign_splits
from pixelseg.train import train

RNG = np.random.default_rng(11)
TINY = [
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    "train.epochs=1",
    "train.samples_per_epoch=8",
    "train.batch_size=4",
    "train.crop_size=32",
    "train.warmup_steps=1",
]


def _texts(problems: list) -> list[str]:
    return [str(p) for p in problems]


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _config(root: Path, data: str, split: str) -> Path:
    path = root / "config.toml"
    path.write_text(f'task = "semantic"\n[data]\nroot = "."\n{data}\n[data.split]\n{split}\n')
    return path


def test_tile_folders_with_spaces_give_ids_that_split_by_tile(tmp_path: Path) -> None:
    palette = np.array([(60, 16, 152), (254, 221, 58), (0, 0, 0), (155, 155, 155)], np.uint8)
    for tile in (1, 2, 3):
        for part in (1, 2):
            image = RNG.integers(0, 255, (24 + tile, 40, 3), np.uint8)
            _save(tmp_path / f"Tile {tile}/images/image_part_{part:03d}.jpg", image)
            mask = palette[RNG.integers(0, 4, image.shape[:2])]
            _save(tmp_path / f"Tile {tile}/masks/image_part_{part:03d}.png", mask)
    data = (
        'images = "Tile */images/*.jpg"\n'
        "id_pattern = 'Tile (?P<tile>\\d+)/images/image_part_(?P<part>\\d+)'\n"
        'masks = "Tile {tile}/masks/{stem}.png"\n'
        'classes = ["building", "vegetation"]\n'
        "palette = [[60, 16, 152], [254, 221, 58]]\n"
        "void_colours = [[0, 0, 0], [155, 155, 155]]"
    )
    config = load_config(_config(tmp_path, data, 'method = "range"\ntrain = ["1-2"]\nval = ["3"]'))
    samples = find_samples(config.data)
    assert [s.id for s in samples] == ["1_001", "1_002", "2_001", "2_002", "3_001", "3_002"]
    assert samples[2].mask == tmp_path / "Tile 2/masks/image_part_001.png"
    report = check_dataset(config)
    assert report.ok, report.errors
    assert report.split_counts == {"train": 4, "val": 2, "test": 0}
    members = assign_splits([s.id for s in samples], config.data.split)
    assert members["val"] == ["3_001", "3_002"]


def _binary_dataset(root: Path, n: int = 5) -> None:
    for index in range(n):
        _save(root / f"images/{index:03d}.png", RNG.integers(0, 255, (32, 32, 3), np.uint8))
        _save(root / f"masks/{index:03d}.png", RNG.integers(1, 3, (32, 32)).astype(np.uint8))


def test_skip_invalid_leaves_a_wrong_size_sample_out(tmp_path: Path) -> None:
    _binary_dataset(tmp_path)
    _save(tmp_path / "masks/001.png", np.ones((32, 35), np.uint8))
    data = 'classes = ["forest", "other"]\nmask_values = [1, 2]'
    split = 'method = "range"\ntrain = ["0-3"]\nval = ["4"]'
    problem = "mask 001.png is 35x32 but image 001.png is 32x32 (width x height)"
    refused = check_dataset(load_config(_config(tmp_path, data, split)))
    assert _texts(refused.errors) == [f"{tmp_path}/masks/001.png: {problem}"]
    config = load_config(_config(tmp_path, data + "\nskip_invalid = true", split), TINY)
    report = check_dataset(config)
    assert report.ok and exit_code(report, strict=False) == 0
    assert f"{tmp_path}/masks/001.png: skipped: {problem}" in _texts(report.warnings)
    assert report.skipped == 1 and report.split_counts == {"train": 3, "val": 1, "test": 0}
    for verify in (True, False):  # a resumed run or an evaluation leaves it out too
        datasets = build_datasets(config, ("train", "val"), verify=verify)
        assert [s.id for s in datasets["train"].samples] == ["000", "002", "003"]
    assert train(config, tmp_path / "run").steps >= 1


def test_skipping_that_empties_train_is_an_error(tmp_path: Path) -> None:
    _binary_dataset(tmp_path, n=2)
    _save(tmp_path / "masks/000.png", np.ones((8, 8), np.uint8))
    data = 'classes = ["forest", "other"]\nmask_values = [1, 2]\nskip_invalid = true'
    report = check_dataset(
        load_config(_config(tmp_path, data, 'method = "list"\ntrain = ["000"]\nval = ["001"]'))
    )
    assert _texts(report.errors) == [
        "split 'train' is empty after skipping invalid samples (check [data.split])"
    ]


def test_skipping_most_samples_is_an_error(tmp_path: Path) -> None:
    _binary_dataset(tmp_path, n=5)
    data = 'classes = ["forest", "other"]\nmask_values = [1, 3]\nskip_invalid = true'
    split = 'method = "range"\ntrain = ["0-3"]\nval = ["4"]'
    report = check_dataset(load_config(_config(tmp_path, data, split)))
    assert len(report.warnings) >= 5 and "skipped: unknown mask values 2" in str(report.warnings[0])
    assert f"{tmp_path}: data.skip_invalid skipped 5 of 5 samples" in _texts(report.errors)[-1]


def _s1_chips(root: Path, events: list[str]) -> None:
    """Two-band float32 chips, NaN nodata, int16 labels -1 / 0 / 1; 'Paraguay' all NaN."""
    for event in events:
        image = RNG.normal(-12, 3, (2, 32, 32)).astype(np.float32)
        image[:, :4, :] = np.nan  # a nodata strip
        image[1, 10, 10] = np.nan  # one band missing at one pixel
        label = RNG.integers(0, 2, (32, 32)).astype(np.int16)
        label[:, :2] = -1
        if event.startswith("Paraguay"):
            image[:] = np.nan
            label[:] = -1
        (root / "S1").mkdir(exist_ok=True)
        (root / "Labels").mkdir(exist_ok=True)
        tifffile.imwrite(root / f"S1/{event}_S1Hand.tif", image, photometric="minisblack")
        tifffile.imwrite(root / f"Labels/{event}_LabelHand.tif", label)


S1_DATA = (
    'images = "S1/*_S1Hand.tif"\n'
    "id_pattern = '(.+)_S1Hand'\n"
    'masks = "Labels/{id}_LabelHand.tif"\n'
    'classes = ["not water", "water"]\n'
    "void_values = [-1]\n"
    "nodata = nan"
)


def test_all_nan_chip_with_nan_nodata_is_a_warning(tmp_path: Path) -> None:
    _s1_chips(tmp_path, ["Ghana_1", "Ghana_2", "Paraguay_3", "Spain_4"])
    split = 'method = "prefix"\nval = ["Spain_"]\ntrain = ["*"]'
    config = load_config(_config(tmp_path, S1_DATA, split), TINY)
    report = check_dataset(config)
    assert report.ok, report.errors
    assert _texts(report.warnings) == [
        f"{tmp_path}/S1/Paraguay_3_S1Hand.tif: every pixel is nodata: no labelled pixel"
    ]
    # -1 and NaN (in any band) are ignored, never a class
    labelled = 3 * (32 * 28 - 2 * 28 - 1)
    assert report.labelled_pixels == labelled
    datasets = build_datasets(config)
    assert all(np.isfinite(datasets["train"].normalizer.mean))
    sample = datasets["val"][0]
    assert bool(sample.image.isfinite().all()) and int((sample.mask == 255).sum()) > 0
    assert train(config, tmp_path / "run").steps >= 1
    # a split whose only chip is the all-NaN one has nothing to validate on: an error
    split = 'method = "prefix"\nval = ["Paraguay_"]\ntrain = ["*"]'
    errors = _texts(check_dataset(load_config(_config(tmp_path, S1_DATA, split))).errors)
    assert errors == ["split 'val' has no labelled pixel (all void or nodata)"]


# --- the shipped satellite configs on the shared data --------------------------------------


def _checked(name: str, config: str, max_images: int | None = None) -> CheckReport:
    shared_dataset(name)
    report = check_dataset(load_config(CONFIGS / config), max_images=max_images)
    assert exit_code(report, strict=False) == 0, report.errors
    return report


def test_amazon_forest_check_names_the_defect() -> None:
    report = _checked("amazon-forest", "amazon_forest.toml")
    assert report.checked == 29 and report.skipped == 1
    defect = [str(p) for p in report.warnings if "Amazon_181.tiff_34.png" in str(p)]
    assert (
        len(defect) == 1 and "is 515x512 but image Amazon_181.tiff_34.tiff is 512x512" in defect[0]
    )
    assert report.image_kinds == {"3 x uint8": 29}
    assert sum(report.split_counts.values()) == 29


def test_sen1floods11_check_warns_about_the_all_nan_chip() -> None:
    report = _checked("sen1floods11", "sen1floods11_s1.toml")
    assert report.checked == 12 and report.image_kinds == {"2 x float32": 12}
    assert any(
        "Paraguay_34417_S1Hand.tif: every pixel is nodata" in str(p) for p in report.warnings
    )
    assert report.class_pixels[1] > 0 and report.ignored_pixels > 0


def test_dubai_aerial_split_by_tile_and_check() -> None:
    report = _checked("dubai-aerial", "dubai_aerial.toml", max_images=8)
    assert report.num_samples == 63 and report.checked == 8
    config = load_config(CONFIGS / "dubai_aerial.toml")
    samples = find_samples(config.data)
    members = assign_splits([s.id for s in samples], config.data.split)
    tile_of = {s.id: s.image.parent.parent.name for s in samples}
    tiles = {name: {tile_of[i] for i in ids} for name, ids in members.items()}
    assert tiles["train"] and tiles["val"] and not tiles["train"] & tiles["val"]
    assert sum(len(ids) for ids in members.values()) == 63  # every image in exactly one split
    for sample in samples:  # ids carry the tile: "3_007" is Tile 3, image_part_007
        assert sample.id == f"{tile_of[sample.id].split()[1]}_{sample.image.stem[-3:]}"
