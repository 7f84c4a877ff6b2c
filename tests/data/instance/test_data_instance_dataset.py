"""Instance datasets, synthetic instance data, detection/semantic collate and building."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pixelseg.config import load_config
from pixelseg.data.instance.build import build_instance_datasets
from pixelseg.data.instance.check import touching_objects
from pixelseg.data.instance.dataset import (
    InstanceDataset,
    collate_detection,
    detection_inputs,
    semantic_view,
)
from pixelseg.data.instance.synthetic import synthetic_instance_image, write_synthetic_instances
from pixelseg.data.normalize import Normalizer
from pixelseg.errors import ConfigError, DataError
from pixelseg.structures import Batch, InstanceSample


def test_synthetic_image_has_touching_round_and_elongated_objects() -> None:
    image, label_image, classes = synthetic_instance_image(
        96, np.random.default_rng(0), two_class=True
    )
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    count = int(label_image.max())
    assert count >= 6 and sorted(np.unique(label_image)) == list(range(count + 1))
    assert classes.shape == (count,) and set(classes.tolist()) == {1, 2}
    assert touching_objects(label_image).mean() > 0.3
    inside = image[label_image > 0].mean()
    assert inside > image[label_image == 0].mean() + 20  # objects stand out of the background


@pytest.mark.parametrize("variant", ["one_class", "two_class"])
def test_both_layouts_write_the_same_objects(tmp_path: Path, variant: str) -> None:
    by_layout = {}
    for layout in ("label_images", "kaggle"):
        config_path = write_synthetic_instances(
            tmp_path / layout, n_images=3, size=64, variant=variant, layout=layout, seed=4
        )
        config = load_config(config_path)
        assert config.task == "instance"
        dataset = InstanceDataset(config.data)
        assert len(dataset) == 3 and dataset.num_classes == (2 if variant == "two_class" else 1)
        by_layout[layout] = [dataset[i] for i in range(3)]
    for a, b in zip(by_layout["label_images"], by_layout["kaggle"]):
        assert a.id == b.id
        assert torch.equal(a.image, b.image) and torch.equal(a.masks, b.masks)
        assert torch.equal(a.labels, b.labels) and torch.equal(a.boxes, b.boxes)


def test_dataset_sample_types_and_normalisation(tmp_path: Path) -> None:
    config = load_config(write_synthetic_instances(tmp_path, n_images=2, size=48, seed=1))
    normalizer = Normalizer((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    raw = InstanceDataset(config.data, ids=["001"])[0]
    sample = InstanceDataset(config.data, ids=["001"], normalizer=normalizer)[0]
    assert isinstance(sample, InstanceSample) and sample.id == "001"
    assert sample.image.dtype == torch.float32 and sample.image.shape == (3, 48, 48)
    torch.testing.assert_close(sample.image, (raw.image - 0.5) / 0.25)
    n = len(sample.ids)
    assert sample.masks.shape == (n, 48, 48) and sample.masks.dtype == torch.bool
    assert sample.boxes.shape == (n, 4) and sample.boxes.dtype == torch.float32
    assert sample.labels.dtype == torch.int64 and bool((sample.labels == 1).all())
    assert sample.ids.tolist() == list(range(1, n + 1))
    x1, y1, x2, y2 = sample.boxes[0].long().tolist()
    mask = sample.masks[0]
    assert mask[y1:y2, x1:x2].sum() == mask.sum() and mask[y1, x1:x2].any()
    with pytest.raises(DataError, match="unknown sample ids nope"):
        InstanceDataset(config.data, ids=["nope"])


def _tiny(n: int, height: int, width: int) -> InstanceSample:
    masks = torch.zeros((n, height, width), dtype=torch.bool)
    for k in range(n):
        masks[k, 2 * k : 2 * k + 2, 1:4] = True
    ignore = torch.zeros((height, width), dtype=torch.bool)
    ignore[-1, -1] = True
    return InstanceSample(
        image=torch.rand(3, height, width),
        masks=masks,
        boxes=torch.tensor([[1.0, 2 * k, 4, 2 * k + 2] for k in range(n)]).reshape(-1, 4),
        labels=torch.arange(1, n + 1),
        ids=torch.arange(n),
        id=f"s{n}",
        ignore=ignore,
    )


def test_semantic_view_is_the_union_of_masks_as_classes() -> None:
    view = semantic_view(_tiny(2, 8, 8), ignore_index=99)
    expected = torch.zeros((8, 8), dtype=torch.int64)
    expected[0:2, 1:4] = 1
    expected[2:4, 1:4] = 2
    expected[-1, -1] = 99
    assert torch.equal(view.mask, expected) and view.meta["ignore_index"] == 99


def test_collate_detection_pads_images_masks_and_class_maps() -> None:
    batch = collate_detection([_tiny(2, 8, 10), _tiny(0, 6, 12)], ignore_index=255)
    assert isinstance(batch, Batch) and batch.ids == ["s2", "s0"]
    assert batch.images.shape == (2, 3, 8, 12) and batch.masks.shape == (2, 8, 12)
    assert batch.targets is not None
    first, empty = batch.targets
    assert first["masks"].shape == (2, 8, 12) and first["masks"].dtype == torch.uint8
    assert first["labels"].tolist() == [1, 2] and first["boxes"].shape == (2, 4)
    assert empty["masks"].shape == (0, 8, 12) and empty["boxes"].shape == (0, 4)
    assert bool((batch.masks[1, 6:] == 255).all()) and bool((batch.masks[0, :, 10:] == 255).all())
    assert batch.masks[0, 7, 9] == 255 and batch.masks[0, 0, 1] == 1 and batch.masks[1, 0, 1] == 0
    images, targets = detection_inputs(batch)
    assert len(images) == 2 and images[0].shape == (3, 8, 12) and targets is batch.targets


def test_torchvision_mask_rcnn_trains_on_a_collated_batch(tmp_path: Path) -> None:
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    config = load_config(write_synthetic_instances(tmp_path, n_images=2, size=64, seed=2))
    datasets = build_instance_datasets(config, ("train",), verify=False)
    batch = collate_detection([datasets["train"][0]])
    torch.manual_seed(0)
    model = maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, min_size=64, max_size=64
    )
    model.train()
    losses = model(*detection_inputs(batch))
    assert {"loss_mask", "loss_box_reg", "loss_classifier"} <= losses.keys()
    assert all(torch.isfinite(v) for v in losses.values())


def test_build_instance_datasets_splits_transforms_and_normaliser(tmp_path: Path) -> None:
    config = load_config(
        write_synthetic_instances(tmp_path, n_images=4, size=40, layout="kaggle", seed=3)
    )
    datasets = build_instance_datasets(config, ("train", "val"))
    assert [len(datasets["train"]), len(datasets["val"])] == [3, 1]
    assert datasets["train"].normalizer == Normalizer.imagenet()  # 8-bit RGB, data.normalize auto
    train = datasets["train"][0]
    assert train.image.shape == (3, 32, 32)  # crop_size 32 from the synthetic config
    val = datasets["val"][0]
    assert val.image.shape == (3, 64, 64) and val.ignore is not None
    with pytest.raises(ConfigError, match="unknown split"):
        build_instance_datasets(config, ("dev",))
    with pytest.raises(DataError, match="split 'test' is empty"):
        build_instance_datasets(config, ("test",), verify=False)
