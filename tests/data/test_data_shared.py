"""``pixelseg check`` on the shared datasets, against an independent numpy count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import CONFIGS, shared_dataset
from pixelseg.data.check import check_command


def _run_check(config: Path, tmp_path: Path, *overrides: str) -> dict:
    out = tmp_path / "report.json"
    assert check_command(config, json_path=str(out), overrides=list(overrides)) == 0
    return json.loads(out.read_text())


def test_isbi2012(tmp_path: Path) -> None:
    root = shared_dataset("isbi2012-membrane")
    report = _run_check(CONFIGS / "isbi2012.toml", tmp_path)
    assert report["ok"] and report["checked"] == 30
    assert report["split_counts"] == {"train": 20, "val": 10, "test": 0}
    counts = np.zeros(2, np.int64)
    for path in sorted((root / "masks").glob("*.png")):
        mask = np.array(Image.open(path))
        counts += [(mask == 0).sum(), (mask == 255).sum()]
    assert report["class_pixels"] == counts.tolist()
    assert 0.15 < report["class_frequencies"][0] < 0.3  # about 22 % membrane, as published


def test_drive_counts_inside_field_of_view(tmp_path: Path) -> None:
    root = shared_dataset("drive") / "training"
    report = _run_check(CONFIGS / "drive.toml", tmp_path)
    assert report["ok"] and report["checked"] == 20
    assert report["split_counts"] == {"train": 15, "val": 5, "test": 0}
    counts = np.zeros(2, np.int64)
    outside = 0
    for n in range(21, 41):
        vessel = np.array(Image.open(root / f"1st_manual/{n}_manual1.gif")) > 0
        fov = np.array(Image.open(root / f"mask/{n}_training_mask.gif")) > 0
        counts += [(~vessel & fov).sum(), (vessel & fov).sum()]
        outside += int((~fov).sum())
    assert report["class_pixels"] == counts.tolist()
    assert report["ignored_pixels"] == outside
    assert 0.08 < report["class_frequencies"][1] < 0.16  # vessels about 12 % of the FOV


def test_camvid_split_by_video_and_counts(tmp_path: Path) -> None:
    root = shared_dataset("camvid")
    lines = (root / "train.txt").read_text().split("\n")
    lines = [line for line in lines if line.strip()]
    assert len(lines) == 367
    # the whole dataset passes and is split by video
    report = _run_check(CONFIGS / "camvid.toml", tmp_path)
    assert report["num_samples"] == report["checked"] == 367
    assert report["split_counts"] == {"train": 266, "val": 101, "test": 0}
    # pixels of a subset spread over the three videos, against numpy
    subset = lines[::12]
    (tmp_path / "subset.txt").write_text("\n".join(subset) + "\n")
    report = _run_check(
        CONFIGS / "camvid.toml", tmp_path, f'data.pairs_file="{tmp_path}/subset.txt"'
    )
    assert report["checked"] == len(subset)
    counts = np.zeros(11, np.int64)
    void = 0
    for line in subset:
        mask = np.array(Image.open(root / line.split()[1]))
        counts += np.bincount(mask[mask < 11], minlength=11)
        void += int((mask == 11).sum())
    assert report["class_pixels"] == counts.tolist()
    assert report["ignored_pixels"] == void
    assert report["split_counts"]["val"] == sum("0006R0_" in line for line in subset)
    assert {"Pedestrian", "Bicyclist"} <= set(report["rare_classes"])
