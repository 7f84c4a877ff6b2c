"""``pixelseg check`` for instance data: problems found, object statistics, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixelseg.config import load_config
from pixelseg.data.check import check_command
from pixelseg.data.instance.check import (
    check_instances,
    suggest_anchor_sizes,
    touching_objects,
)
from pixelseg.data.instance.synthetic import write_synthetic_instances


def test_touching_objects_uses_a_one_pixel_dilation() -> None:
    label = np.zeros((6, 9), np.int32)
    label[0:2, 0:2] = 1
    label[2:4, 2:4] = 2  # diagonal neighbour of 1: touches in a 3x3 dilation
    label[0:2, 5:7] = 3  # one empty column from 4
    label[0:2, 8] = 4
    label[5, 0] = 5
    assert touching_objects(label).tolist() == [True, True, False, False, False]
    assert touching_objects(np.zeros((3, 3), np.int32)).shape == (0,)


def test_suggested_anchor_sizes_span_the_5th_to_95th_percentile() -> None:
    sides = np.linspace(10, 60, 101)
    assert suggest_anchor_sizes(sides**2) == [8, 16, 32, 64]
    assert suggest_anchor_sizes(np.array([])) == []


def test_check_summarises_synthetic_objects(tmp_path: Path) -> None:
    config = load_config(write_synthetic_instances(tmp_path, n_images=4, size=64, seed=5))
    report = check_instances(config)
    assert report.ok and report.checked == 4 and not report.warnings
    assert report.split_counts == {"train": 3, "val": 1, "test": 0}
    assert report.objects == sum(report.objects_per_class) > 10
    stats = report.objects_per_image
    assert stats["min"] <= stats["median"] <= stats["max"]
    area = report.object_area
    assert area["min"] <= area["p5"] <= area["median"] <= area["p95"] <= area["max"]
    assert report.equivalent_diameter["median"] == pytest.approx(
        np.sqrt(4 * area["median"] / np.pi), rel=0.05
    )
    low, high = report.suggested_anchor_sizes[0], report.suggested_anchor_sizes[-1]
    assert low <= np.sqrt(area["p5"]) and high >= np.sqrt(area["p95"])
    assert report.touching_fraction is not None and 0.2 < report.touching_fraction <= 1.0


def test_check_reports_overlaps_empty_masks_and_sizes(tmp_path: Path) -> None:
    config = load_config(
        write_synthetic_instances(tmp_path, n_images=4, size=48, layout="kaggle", seed=6)
    )
    first = np.asarray(Image.open(tmp_path / "000/masks/001.png"))
    Image.fromarray(first).save(tmp_path / "000/masks/900.png")  # a duplicate object
    Image.fromarray(np.zeros_like(first)).save(tmp_path / "001/masks/901.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "002/masks/902.png")
    report = check_instances(config)
    problems = [str(p) for p in report.errors]
    assert (
        f"{tmp_path / '000/masks'}: overlapping objects in image 000.png: 001.png and 900.png"
        in (problems[0])
    )
    assert f"{tmp_path / '002/masks/902.png'}: mask is 8x8 but image 002.png is 48x48 (WxH)" in (
        problems
    )
    assert report.empty_masks == 1
    assert f"{tmp_path / '001/masks'}: 1 empty masks: 901.png" in [str(p) for p in report.warnings]
    small = check_instances(load_config(tmp_path / "config.toml", ["data.max_pixels=100"]))
    assert any("above data.max_pixels = 100" in str(p) for p in small.errors)


def test_check_empty_dataset_and_duplicate_ids(tmp_path: Path) -> None:
    config_path = write_synthetic_instances(tmp_path, n_images=2, size=32, seed=7)
    empty = check_instances(load_config(config_path, ['data.images="none/*.png"']))
    assert not empty.ok and "empty dataset" in str(empty.errors[0])
    dupes = check_instances(load_config(config_path, ["data.id_pattern='(\\d)\\d*'"]))
    assert any("duplicate sample id '0'" in str(p) for p in dupes.errors)


def test_instance_check_command_exit_codes_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = write_synthetic_instances(tmp_path / "d", n_images=3, size=40, seed=8)
    out = tmp_path / "report.json"
    assert check_command(config_path, json_path=str(out)) == 0
    text = capsys.readouterr().out
    assert "objects per image" in text and "suggested detector anchor sizes" in text
    assert "touching objects" in text and "result: OK" in text
    saved = json.loads(out.read_text())
    assert saved["ok"] and saved["format"] == "instance_labels" and saved["objects"] > 0
    assert check_command(config_path, overrides=['data.masks="x/{stem}.png"']) == 1
    assert "missing label image" in capsys.readouterr().out
    bad = ['data.split.val=["7"]', 'data.split.train=["*"]']
    assert check_command(config_path, overrides=bad) == 0
    assert check_command(config_path, overrides=bad, strict=True) == 1
