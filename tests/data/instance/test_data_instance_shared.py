"""DSB2018 read through the three instance formats gives the same masks; its check passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from conftest import CONFIGS, shared_dataset
from pixelseg.config import DataConfig, load_config
from pixelseg.data.instance.check import check_instances
from pixelseg.data.instance.dataset import InstanceDataset


def test_dsb2018_sample_identical_as_kaggle_label_image_and_coco(tmp_path: Path) -> None:
    shared_dataset("dsb2018")
    config = load_config(CONFIGS / "dsb2018_instances.toml")
    kaggle = InstanceDataset(config.data)
    index = next(i for i, s in enumerate(kaggle.samples) if 20 <= len(s.objects) <= 60)
    sample = kaggle[index]
    n, height, width = sample.masks.shape
    assert n >= 20 and sample.image.shape == (3, height, width)

    label = np.zeros((height, width), np.uint16)
    for k, mask in enumerate(sample.masks.numpy(), start=1):
        label[mask] = k
    Image.fromarray(sample.image.mul(255).round().byte().permute(1, 2, 0).numpy()).save(
        tmp_path / f"{sample.id}.png"
    )
    (tmp_path / "labels").mkdir()
    Image.fromarray(label).save(tmp_path / "labels" / f"{sample.id}.png")
    labels_data = DataConfig(
        format="instance_labels", root=str(tmp_path), images="*.png", masks="labels/{stem}.png"
    )

    annotations = []
    for k, mask in enumerate(sample.masks.numpy(), start=1):
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        segmentation = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        annotations.append({"id": k, "image_id": 1, "category_id": 1, "segmentation": segmentation})
    coco = {
        "images": [{"id": 1, "file_name": f"{sample.id}.png", "height": height, "width": width}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "nucleus"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    coco_data = DataConfig(format="coco", root=str(tmp_path), annotations="coco.json")

    for data in (labels_data, coco_data):
        other = InstanceDataset(data)[0]
        assert other.id == sample.id
        assert np.array_equal(other.masks.numpy(), sample.masks.numpy())
        assert np.array_equal(other.boxes.numpy(), sample.boxes.numpy())
        assert np.array_equal(other.image.numpy(), sample.image.numpy())
        assert other.labels.tolist() == [1] * n


def test_dsb2018_check_passes_on_a_subset() -> None:
    shared_dataset("dsb2018")
    report = check_instances(load_config(CONFIGS / "dsb2018_instances.toml"), max_images=20)
    assert report.ok, [str(p) for p in report.errors]
    assert report.num_samples == 423 and report.checked == 20
    assert report.classes == ["nucleus"] and report.objects > 200
    assert sum(report.split_counts.values()) == 423 and report.split_counts["train"] > 250
    assert report.touching_fraction is not None and report.touching_fraction > 0.05
    assert report.suggested_anchor_sizes[0] <= 8 and report.suggested_anchor_sizes[-1] >= 32
