"""``bench/peer_plain.py`` and its scoring: the plain loop trains, predicts whole images, and is
scored by pixelseg's semantic task against pixelseg's own ground truth.

The loop needs ``segmentation_models_pytorch`` (the bench extra); CI installs the dev extras
only, so these tests skip there.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO, shared_dataset
from pixelseg.config import load_config
from pixelseg.data.build import build_datasets
from pixelseg.data.folder import MaskFolderDataset
from pixelseg.data.normalize import Normalizer
from pixelseg.data.synthetic import write_synthetic_semantic

pytest.importorskip("segmentation_models_pytorch")

sys.path.insert(0, str(REPO / "bench"))
try:
    import peer_plain
    import semantic_quality
    import splits
finally:
    sys.path.remove(str(REPO / "bench"))

# Synthetic scenes of 40 px: smaller than a 48 px crop and not a multiple of 32 (both pad).
SIZE = 40
SPLIT_SETS = [
    'data.split.method="range"',
    'data.split.train=["0-3"]',
    'data.split.val=["4"]',
    'data.split.test=["5"]',
]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plain")
    return write_synthetic_semantic(root, n_images=6, size=SIZE, seed=3)


def test_plain_loop_trains_a_few_steps_and_predicts_whole_images(synthetic: Path) -> None:
    config = load_config(synthetic, SPLIT_SETS)
    samples = splits.plain_samples(config, "train")
    labels = splits.plain_labels(config)
    assert len(samples) == 4 and labels["ignore_index"] == 255
    logs: list[str] = []

    run = peer_plain.train_plain(
        samples, labels, budget=600, seed=0, crop_size=48, batch_size=2, max_steps=3,
        log=logs.append,
    )  # fmt: skip

    summary = run.summary
    assert summary["steps"] == 3 and summary["crops_seen"] == 6
    assert summary["crop_size"] == 48 and summary["batch_size"] == 2  # 48 > 40: crops are padded
    assert math.isfinite(summary["final_loss"])
    breakdown = summary["time_breakdown"]
    assert set(breakdown["seconds"]) == {"startup", "steps", "data", "other"}
    assert math.isclose(sum(breakdown["fractions"].values()), 1.0, rel_tol=1e-6)
    assert summary["startup_seconds"] <= summary["wall_seconds"]
    assert summary["step_seconds"] > 0 and summary["data_seconds_per_step"] >= 0
    assert any("3 steps, 6 crops" in line for line in logs)
    image = peer_plain.read_image(samples[0][0])
    logits = run.predict(image[:37, :29])  # any size, padded to 64 x 32 and cropped back
    assert logits.shape == (4, 37, 29) and logits.dtype == torch.float32
    assert not run.model.training


def test_plain_labels_match_pixelseg_encoding(synthetic: Path) -> None:
    config = load_config(synthetic, SPLIT_SETS)
    dataset = MaskFolderDataset(config.data)
    labels = splits.plain_labels(config)
    for index, sample in enumerate(splits.plain_samples(config, "train")):
        ours = peer_plain.read_label(sample, labels)
        assert ours.dtype == np.uint8
        np.testing.assert_array_equal(ours, dataset.load(index).label)


def test_perfect_predictions_score_one_through_pixelseg_evaluate(synthetic: Path) -> None:
    """An oracle behind the plain peer's interface scores mIoU 1: images and masks align."""
    sets = [SPLIT_SETS[0], 'data.split.train=["0-2"]', 'data.split.val=["3"]']
    config = load_config(synthetic, [*sets, 'data.split.test=["4-5"]'])
    truth = build_datasets(config, ("test",), normalizer=Normalizer.identity(3), verify=False)
    dataset = truth["test"]
    by_image = {}
    for index in range(len(dataset)):
        raw = peer_plain.read_image(dataset.samples[index].image)
        label = torch.from_numpy(dataset.load(index).label)
        by_image[raw.tobytes()] = label

    def oracle(image: np.ndarray) -> torch.Tensor:
        label = by_image[image.tobytes()].clamp(max=3)  # void pixels: any class
        return torch.nn.functional.one_hot(label, 4).permute(2, 0, 1).float() * 10

    task = semantic_quality._semantic_task(dataset, torch.nn.Identity())
    images = semantic_quality.PeerImages(dataset, peer_plain.read_image)
    sample = images[0]
    assert sample.image.dtype == torch.uint8 and sample.image.shape == (SIZE, SIZE, 3)
    assert sample.mask.shape == (64, 64)  # pixelseg's mask, padded to a multiple of 32
    metrics = task.evaluate(semantic_quality.plain_predict_fn(oracle), images)
    assert metrics["num_images"] == 2
    assert metrics["miou"] == pytest.approx(1.0)
    assert metrics["boundary_f1"] == pytest.approx(1.0)


def test_train_plain_row_is_scored_on_the_test_split(synthetic: Path) -> None:
    config = load_config(synthetic, [*SPLIT_SETS, "train.max_time=600.0"])
    summary, metrics = semantic_quality._train_plain(
        config, "synthetic", lambda _: None, split="test", crop_size=32, batch_size=2,
        max_steps=2,
    )  # fmt: skip
    assert summary["steps"] == 2 and summary["checkpoint"] == "final weights"
    assert summary["vflip"] is True and summary["best_epoch"] is None
    assert metrics["split"] == "test" and metrics["num_images"] == 1
    assert set(metrics["per_class_iou"]) == {"background", "vegetation", "road", "building"}
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["isbi2012", "drive", "camvid"])
def test_plain_peer_reads_the_shared_data_as_pixelseg_does(dataset: str) -> None:
    """Same pixels, same labels (DRIVE: outside the field of view ignored; CamVid: void 11)."""
    folder = {"isbi2012": "isbi2012-membrane", "drive": "drive", "camvid": "camvid"}[dataset]
    shared_dataset(folder)
    config = semantic_quality.bench_config(dataset, "pixelseg", (), 1.0, 0, split="test")
    data = MaskFolderDataset(config.data)
    sample = data.samples[0]
    loaded = data.load(0)
    triple = (sample.image, sample.mask, sample.valid)
    labels = peer_plain.read_label(triple, splits.plain_labels(config))
    np.testing.assert_array_equal(labels, loaded.label)
    image = peer_plain.read_image(sample.image)
    stored = loaded.image if loaded.image.shape[2] == 3 else np.repeat(loaded.image, 3, axis=2)
    np.testing.assert_array_equal(image, stored)
    if dataset == "drive":
        assert (labels == 255).any()  # the field of view leaves pixels out


def test_bench_rows_train_in_fp32_on_every_cpu() -> None:
    """Equal precision: pixelseg's rows are fp32 like the plain peer's, AMX or not."""
    config = semantic_quality.bench_config("isbi2012", "pixelseg", (), 1.0, 0, split="test")
    assert config.train.precision == "fp32"
