"""Mask-folder pairing (stems, id patterns, pairs files), valid masks, nodata, building, collate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from pixelseg.config import Config, DataConfig, config_from_dict
from pixelseg.data.build import build_datasets, class_pixel_counts, collate_semantic
from pixelseg.data.folder import MaskFolderDataset, find_samples
from pixelseg.errors import DataError
from pixelseg.structures import Batch, SemanticSample

RNG = np.random.default_rng(1)


def _config(root: Path, data: dict[str, Any], train: dict[str, Any] | None = None) -> Config:
    raw = {"data": {"root": str(root), **data}, "train": train or {"crop_size": 32}}
    return config_from_dict(raw, source="test.toml")


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_pairs_by_stem_with_id_pattern_and_valid_mask(tmp_path: Path) -> None:
    for n in (21, 22):
        _save(tmp_path / f"images/{n}_training.png", RNG.integers(0, 255, (8, 8, 3), np.uint8))
        vessel = np.zeros((8, 8), np.uint8)
        vessel[2] = 255
        _save(tmp_path / f"manual/{n}_manual1.gif", vessel)
        fov = np.full((8, 8), 255, np.uint8)
        fov[:, :2] = 0
        _save(tmp_path / f"fov/{n}_training_mask.gif", fov)
    data = DataConfig(
        root=str(tmp_path),
        images="images/*.png",
        id_pattern=r"(\d+)_training",
        masks="manual/{id}_manual1.gif",
        valid_mask="fov/{stem}_mask.gif",
        classes=("background", "vessel"),
        mask_values=(0, 255),
    )
    samples = find_samples(data)
    assert [s.id for s in samples] == ["21", "22"]
    assert samples[0].mask == tmp_path / "manual/21_manual1.gif"
    sample = MaskFolderDataset(data)[0]
    assert isinstance(sample, SemanticSample) and sample.id == "21"
    assert sample.image.shape == (3, 8, 8) and sample.image.dtype == torch.float32
    assert sample.mask.dtype == torch.int64
    assert (sample.mask[:, :2] == 255).all()  # outside the field of view
    assert (sample.mask[2, 2:] == 1).all() and (sample.mask[3, 2:] == 0).all()


def test_pairs_file_with_foreign_prefix(tmp_path: Path) -> None:
    _save(tmp_path / "train/a.png", RNG.integers(0, 255, (4, 5, 3), np.uint8))
    _save(tmp_path / "trainannot/a.png", np.ones((4, 5), np.uint8))
    _save(tmp_path / "train/b.png", RNG.integers(0, 255, (4, 5, 3), np.uint8))
    _save(tmp_path / "trainannot/b.png", np.zeros((4, 5), np.uint8))
    (tmp_path / "train.txt").write_text(
        "/SegNet/CamVid/train/a.png /SegNet/CamVid/trainannot/a.png\n"
        "train/b.png trainannot/b.png\n\n"
    )
    data = DataConfig(root=str(tmp_path), pairs_file="train.txt", classes=("x", "y"))
    samples = find_samples(data)
    assert [(s.id, s.image, s.mask) for s in samples] == [
        ("a", tmp_path / "train/a.png", tmp_path / "trainannot/a.png"),
        ("b", tmp_path / "train/b.png", tmp_path / "trainannot/b.png"),
    ]
    assert int(MaskFolderDataset(data)[0].mask.sum()) == 20
    (tmp_path / "bad.txt").write_text("only_one_column.png\n")
    with pytest.raises(DataError, match="line 1: expected 'image mask'"):
        find_samples(DataConfig(root=str(tmp_path), pairs_file="bad.txt", classes=("x",)))
    with pytest.raises(DataError, match="pairs file not found"):
        find_samples(DataConfig(root=str(tmp_path), pairs_file="none.txt", classes=("x",)))


def test_nodata_pixels_ignored_and_zero_after_normalisation(tmp_path: Path) -> None:
    bands = RNG.integers(100, 5000, (4, 6, 6), dtype=np.uint16)
    bands[:, :, 0] = 0
    (tmp_path / "images").mkdir()
    tifffile.imwrite(tmp_path / "images/s.tif", bands, photometric="minisblack")
    _save(tmp_path / "masks/s.png", np.zeros((6, 6), np.uint8))
    config = _config(
        tmp_path,
        {"images": "images/*.tif", "classes": ["a", "b"], "nodata": 0, "split": {"method": "all"}},
    )
    datasets = build_datasets(config, ("train", "val"))
    assert datasets["val"].in_channels == 4
    sample = datasets["val"][0]
    assert (sample.mask[:6, 0] == 255).all() and (sample.mask[:6, 1:6] == 0).all()
    assert torch.allclose(sample.image[:, :6, 0], torch.zeros(4, 6), atol=1e-5)
    # statistics exclude nodata: normalised valid pixels have mean 0 and std 1 per band
    valid = sample.image[:, :6, 1:6].reshape(4, -1)
    assert torch.allclose(valid.mean(1), torch.zeros(4), atol=1e-4)
    assert torch.allclose(valid.std(1, unbiased=False), torch.ones(4), atol=1e-4)
    assert sample.image.shape[-2:] == (32, 32)  # padded to a multiple of 32 for evaluation
    assert (sample.mask[6:] == 255).all()


def test_build_datasets_refuses_bad_labels_and_counts(tmp_path: Path) -> None:
    for i in range(4):
        _save(tmp_path / f"images/{i}.png", RNG.integers(0, 255, (8, 8), np.uint8))
        mask = np.zeros((8, 8), np.uint8)
        mask[: i + 1] = 1
        _save(tmp_path / f"masks/{i}.png", mask)
    split = {"method": "range", "train": ["0-2"], "val": ["3"]}
    config = _config(tmp_path, {"classes": ["a", "b"], "split": split})
    datasets = build_datasets(config)
    assert len(datasets["train"]) == 3 and len(datasets["val"]) == 1
    np.testing.assert_array_equal(class_pixel_counts(config), [64 * 3 - 48, 48])
    np.testing.assert_array_equal(class_pixel_counts(datasets["val"]), [32, 32])
    train_sample = datasets["train"][0]
    assert train_sample.image.shape == (1, 32, 32) and train_sample.mask.shape == (32, 32)
    batch = collate_semantic([datasets["val"][0], datasets["train"][1]])
    assert isinstance(batch, Batch) and batch.images.shape == (2, 1, 32, 32)
    assert batch.ids == ["3", "1"]
    _save(tmp_path / "masks/1.png", np.full((8, 8), 9, np.uint8))
    with pytest.raises(DataError, match=r"1.png: unknown mask values 9 \(64 px\)"):
        build_datasets(config)


def test_collate_pads_different_sizes_with_ignore() -> None:
    a = SemanticSample(torch.ones(3, 4, 6), torch.zeros(4, 6, dtype=torch.long), "a", {})
    b = SemanticSample(torch.ones(3, 5, 2), torch.ones(5, 2, dtype=torch.long), "b", {})
    batch = collate_semantic([a, b], ignore_index=7)
    assert batch.images.shape == (2, 3, 5, 6) and batch.masks.shape == (2, 5, 6)
    assert (batch.masks[0, 4] == 7).all() and (batch.masks[1, :, 2:] == 7).all()
    assert batch.images[1, :, :, 2:].abs().sum() == 0


def test_unknown_ids_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data root folder not found"):
        find_samples(DataConfig(root=str(tmp_path / "nowhere"), classes=("a",)))
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="unknown sample ids zz"):
        MaskFolderDataset(DataConfig(root=str(tmp_path), classes=("a",)), ids=["zz"])
