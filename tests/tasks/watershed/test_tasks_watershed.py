"""The watershed task: config, targets after augmentation, loss, and training end to end."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.cli import main
from pixelseg.config import Config, WatershedConfig, config_from_dict, load_config
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.errors import ConfigError
from pixelseg.inference.evaluate import evaluate_run
from pixelseg.tasks.watershed.data import IGNORE_INDEX, collate_watershed
from pixelseg.tasks.watershed.factory import WATERSHED
from pixelseg.tasks.watershed.targets import watershed_targets
from pixelseg.tasks.watershed.task import WatershedTask
from pixelseg.train import train

TINY = [
    'task="watershed"',
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    "train.crop_size=64",
    "train.batch_size=2",
    "train.warmup_steps=1",
]


@pytest.fixture(scope="module")
def data_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wsdata")
    return write_synthetic_instances(root, n_images=8, size=64, seed=0)


def test_watershed_config_round_trips_and_refuses_bad_combinations() -> None:
    config = config_from_dict(
        {"task": "watershed", "watershed": {"w0": 5, "foreground_thresholds": [0.3, 0.6]}}
    )
    assert config.watershed == WatershedConfig(w0=5.0, foreground_thresholds=(0.3, 0.6))
    assert config_from_dict(config.to_dict()) == config
    assert Config().watershed == WatershedConfig()  # old run directories have no section
    with pytest.raises(ConfigError, match=r"watershed\.targets"):
        config_from_dict({"watershed": {"targets": "four_class"}})
    with pytest.raises(ConfigError, match="needs targets = 'three_class'"):
        config_from_dict({"watershed": {"targets": "two_class"}})
    with pytest.raises(ConfigError, match="needs distance_head"):
        config_from_dict({"watershed": {"markers": "distance"}})
    with pytest.raises(ConfigError, match=r"watershed\.sigmaa"):
        config_from_dict({"watershed": {"sigmaa": 3.0}})


def test_training_targets_of_a_whole_image_crop_equal_the_direct_ones(data_config: Path) -> None:
    # A crop as large as the image: only flips and quarter turns move the cached targets.
    config = load_config(data_config, [*TINY, "watershed.distance_head=true"])
    job = WATERSHED.build_job(config, ("train",), None)
    torch.manual_seed(0)
    for index in range(6):
        sample = job.datasets["train"][index]
        assert sample.image.shape[-2:] == (64, 64)
        labels = sample.instances.numpy()
        expected = watershed_targets(labels, with_distance=True)
        valid = sample.class_map != IGNORE_INDEX
        np.testing.assert_array_equal(sample.class_map.numpy(), expected["class_map"])
        np.testing.assert_allclose(sample.weight_map.numpy(), expected["weight_map"], rtol=1e-6)
        assert sample.distance is not None
        np.testing.assert_allclose(sample.distance.numpy(), expected["distance"], atol=1e-6)
        assert ((sample.class_map.numpy() > 0) == (labels > 0))[valid.numpy()].all()


def test_loss_ignores_zero_weight_pixels_and_distance_head_adds_a_channel(
    data_config: Path,
) -> None:
    config = load_config(
        data_config, [*TINY, "watershed.distance_head=true", 'watershed.markers="distance"']
    )
    job = WATERSHED.build_job(config, ("val",), None)
    assert job.model.config["num_classes"] == 4  # type: ignore[index]
    assert job.info.loss["name"] == "dice_ce" and "w0 = 10" in job.info.loss["weighting"]
    batch = collate_watershed([job.datasets["val"][0]])
    task = job.task
    assert isinstance(task, WatershedTask)
    outputs = job.model(batch.images)
    assert outputs.shape[1] == 4
    loss = task.loss(outputs, batch)
    assert torch.isfinite(loss)
    # Changing the class scores only where a pixel is ignored leaves the loss unchanged.
    batch.masks[0, :8, :8] = IGNORE_INDEX
    assert batch.targets is not None
    batch.targets[0]["weight_map"][:8, :8] = 0.0
    base = task.loss(outputs, batch)
    changed = outputs.detach().clone()
    changed[0, :3, :8, :8] += 50.0
    changed[0, 3, :8, :8] -= 50.0
    assert task.loss(changed, batch).item() == pytest.approx(base.item(), rel=1e-5)
    metrics = task.make_metrics()
    task.update_metrics(metrics, {"outputs": outputs}, batch)
    result = metrics.compute()
    assert 0.0 <= result["matching_ap50"] <= 1.0 and "miou" in result


def test_naive_baseline_has_two_classes_and_connected_components(data_config: Path) -> None:
    config = load_config(
        data_config,
        [*TINY, 'watershed.targets="two_class"', 'watershed.postprocess="connected_components"'],
    )
    job = WATERSHED.build_job(config, ("val",), None)
    assert job.info.class_names == ["background", "object"]
    assert job.info.extra["postprocess"]["method"] == "connected_components"
    sample = job.datasets["val"][0]
    assert set(np.unique(sample.class_map.numpy())) <= {0, 1, IGNORE_INDEX}
    assert job.model(sample.image[None]).shape[1] == 2


@pytest.fixture(scope="module")
def trained_run(data_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("wsrun") / "run"
    settings = [
        *TINY,
        "train.epochs=4",
        "train.lr=0.01",
        'train.early_stopping_metric="matching_ap50"',
    ]
    train(load_config(data_config, settings), run_dir)
    return run_dir


def test_training_tunes_and_stores_post_processing(trained_run: Path) -> None:
    stored = json.loads((trained_run / "postprocess.json").read_text())
    assert stored["tuned_on"] == "val"
    assert len(stored["table"]) == 5 * 5 * 2  # interior x foreground thresholds x unseeded
    best = max(row["matching_ap50_pooled"] for row in stored["table"])
    chosen = stored["chosen"]
    searched = ("interior_threshold", "foreground_threshold", "keep_unseeded")
    row = next(r for r in stored["table"] if all(r[k] == chosen[k] for k in searched))
    assert row["matching_ap50_pooled"] == best
    info = json.loads((trained_run / "run.json").read_text())
    assert info["task"] == "watershed" and info["extra"]["postprocess"] == chosen
    lines = (trained_run / "metrics.jsonl").read_text().splitlines()
    assert all("val_matching_ap50" in json.loads(line) for line in lines)


def test_evaluate_reports_instance_metrics(
    trained_run: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = evaluate_run(trained_run, split="val")
    assert result["task"] == "watershed" and result["num_images"] == 2
    for key in ("matching_ap_pooled", "matching_ap_per_image", "counting", "coco"):
        assert key in result
    assert 0.0 <= result["matching_ap_pooled"]["ap50"] <= 1.0
    assert result["counting"]["true_objects"] > 0
    assert result["postprocess_tuned_on"] == "val"
    assert main(["evaluate", str(trained_run), "--split", "val"]) == 0
    printed = capsys.readouterr().out
    assert "pooled over the split" in printed and "COCO mask AP" in printed
    assert "post-processing: watershed" in printed and "tuned on the val split" in printed
    assert (trained_run / "eval" / "val" / "metrics.json").is_file()


def test_predict_writes_16_bit_labels_and_overlays_and_resumes(
    trained_run: Path, data_config: Path, tmp_path: Path
) -> None:
    images = sorted((data_config.parent / "images").glob("*.png"))[:2]
    out = tmp_path / "pred"
    assert main(["predict", str(trained_run), *map(str, images), "--out", str(out)]) == 0
    for image in images:
        with Image.open(out / f"{image.stem}_instances.png") as labels:
            assert labels.mode in ("I;16", "I")
            assert labels.size == (64, 64)
        with Image.open(out / f"{image.stem}_overlay.png") as overlay:
            assert overlay.mode == "RGB" and overlay.size == (64, 64)
    before = (out / f"{images[0].stem}_instances.png").stat().st_mtime_ns
    assert main(["predict", str(trained_run), *map(str, images), "--out", str(out)]) == 0
    assert (out / f"{images[0].stem}_instances.png").stat().st_mtime_ns == before
    assert not list(out.glob("*.tmp"))


def test_resumed_config_keeps_the_watershed_section(trained_run: Path) -> None:
    stored = config_from_dict(json.loads((trained_run / "config.json").read_text()))
    assert stored.task == "watershed"
    assert dataclasses.asdict(stored.watershed) == dataclasses.asdict(WatershedConfig())
