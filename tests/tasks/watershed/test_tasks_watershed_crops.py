"""Cached full-image targets on a training crop: equal to the crop's own targets away from its
border, different (seeing the objects outside the crop) only within the documented band."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelseg.config import load_config
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.tasks.watershed.data import WatershedTargetDataset
from pixelseg.tasks.watershed.factory import WATERSHED
from pixelseg.tasks.watershed.targets import class_balance_weights, watershed_targets

SIGMA, WIDTH = 5.0, 2
GAP_BAND = int(6 * SIGMA) + 1  # the gap term sees objects within 6 sigma
SETTINGS = [
    'task="watershed"',
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    "train.crop_size=128",
    "train.foreground_crops=0",
    "watershed.distance_head=true",
    'watershed.markers="distance"',
]


@pytest.fixture(scope="module")
def train_set(tmp_path_factory: pytest.TempPathFactory) -> WatershedTargetDataset:
    config_path = write_synthetic_instances(
        tmp_path_factory.mktemp("wscrops"), n_images=4, size=192, seed=5
    )
    job = WATERSHED.build_job(load_config(config_path, SETTINGS), ("train",), None)
    dataset = job.datasets["train"]
    assert isinstance(dataset, WatershedTargetDataset)
    return dataset


def _gap(weight_map: torch.Tensor, class_map: torch.Tensor) -> np.ndarray:
    """The border weights minus their class-balancing term."""
    return (weight_map.double() - class_balance_weights(class_map)).numpy()


def test_cached_targets_equal_the_crops_own_away_from_its_border(
    train_set: WatershedTargetDataset,
) -> None:
    torch.manual_seed(3)
    differs_near_border = False
    for draw in range(8):
        sample = train_set[draw % len(train_set)]
        assert sample.image.shape[-2:] == (128, 128) and sample.distance is not None
        labels = sample.instances.numpy()
        direct = watershed_targets(labels, boundary_width=WIDTH, sigma=SIGMA, with_distance=True)
        inner = (slice(WIDTH + 1, -WIDTH - 1),) * 2
        np.testing.assert_array_equal(sample.class_map.numpy()[inner], direct["class_map"][inner])
        gap = _gap(sample.weight_map, sample.class_map)
        direct_gap = _gap(
            torch.from_numpy(direct["weight_map"]), torch.from_numpy(direct["class_map"])
        )
        far = (slice(GAP_BAND, -GAP_BAND),) * 2
        np.testing.assert_allclose(gap[far], direct_gap[far], rtol=1e-5, atol=1e-5)
        differs_near_border |= not np.allclose(gap, direct_gap, rtol=1e-5, atol=1e-5)
        # Objects the crop leaves whole have the same normalised distance.
        edge = np.zeros(labels.shape, dtype=bool)
        edge[[0, -1], :] = edge[:, [0, -1]] = True
        for obj in set(np.unique(labels)) - {0} - set(np.unique(labels[edge])):
            inside = labels == obj
            np.testing.assert_allclose(
                sample.distance.numpy()[inside], direct["distance"][inside], atol=1e-6
            )
    assert differs_near_border  # the cached targets do see the objects beyond the crop


def test_full_image_targets_are_cached_once_per_image(train_set: WatershedTargetDataset) -> None:
    cache = train_set.instances.cache
    assert cache is not None
    keys = {("watershed", (f.id, str(f.image))) for f in train_set.instances.samples}
    torch.manual_seed(0)
    for index in range(len(train_set)):
        train_set[index]
    before = cache.nbytes
    cached = [k for k in cache if isinstance(k, tuple) and k[0] == "watershed"]
    assert {(k[0], k[1]) for k in cached} == keys
    for index in range(len(train_set)):
        train_set[index]
    assert cache.nbytes == before  # computed once per image, not per crop


def test_a_trained_run_keeps_its_recorded_crop_sampling(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    config_path = write_synthetic_instances(tmp_path_factory.mktemp("wsrec"), n_images=4, seed=1)
    job = WATERSHED.build_job(load_config(config_path, SETTINGS), ("train", "val"), None)
    recorded = job.info.extra["crop_sampling"]
    assert recorded == job.datasets["train"].crop_sampling  # type: ignore[attr-defined]
    assert recorded["foreground_share"] == 0 and "train.foreground_crops = 0" in recorded["reason"]
    changed = load_config(config_path, [*SETTINGS, "train.foreground_crops=0.9"])
    resumed = WATERSHED.build_job(changed, ("train", "val"), job.info)
    assert resumed.datasets["train"].crop_sampling == recorded  # type: ignore[attr-defined]
