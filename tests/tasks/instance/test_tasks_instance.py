"""The instance task: Mask R-CNN through the engine, the run directory and the CLI."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as coco_mask
from pycocotools.coco import COCO
from torch import Tensor, nn

from pixelseg.cli import main
from pixelseg.config import load_config
from pixelseg.data.instance.dataset import collate_detection
from pixelseg.data.instance.synthetic import synthetic_instance_image, write_synthetic_instances
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import save_checkpoint
from pixelseg.engine.writer import RunWriter
from pixelseg.errors import ConfigError
from pixelseg.metrics.coco import coco_results, encode_label_image
from pixelseg.models.mask_rcnn import build_mask_rcnn
from pixelseg.postprocess.masks import label_image_to_boxes
from pixelseg.structures import InstanceSample
from pixelseg.tasks.instance.factory import INSTANCE
from pixelseg.tasks.instance.outputs import (
    Detections,
    InstanceMetrics,
    detection_label_image,
    tune_thresholds,
)
from pixelseg.tasks.instance.task import InstanceTask

LOSS_KEYS = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
# A registered preset made cheap: narrow FPN and heads, few proposals and sampled RoIs.
TINY: dict[str, Any] = {
    "fpn_channels": 16,
    "box_fc_channels": 32,
    "box_head_convs": 1,
    "mask_head_convs": 1,
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 64,
    "rpn_pre_nms_top_n_test": 100,
    "rpn_post_nms_top_n_test": 32,
    "box_batch_size_per_image": 32,
}
TINY_SET = [f"model.options.{key}={value}" for key, value in TINY.items()]
RUN_SET = [
    *TINY_SET,
    "train.epochs=2",
    "train.warmup_steps=0",
    'train.early_stopping_metric="mask_ap"',
    'train.precision="fp32"',
]


class TinyEncoder(nn.Module):
    """Five stride-2 stages of two GroupNorm convolutions (the encoder contract, CPU-fast)."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 24, 32, 48, 64)):
        super().__init__()
        self.out_channels = widths
        self.strides = (2, 4, 8, 16, 32)
        stages, previous = [], in_channels
        for width in widths:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(previous, width, 3, stride=2, padding=1),
                    nn.GroupNorm(4, width),
                    nn.ReLU(),
                    nn.Conv2d(width, width, 3, padding=1),
                    nn.GroupNorm(4, width),
                    nn.ReLU(),
                )
            )
            previous = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def tiny_detector(**options: Any) -> Any:
    torch.manual_seed(0)
    settings: dict[str, Any] = {
        "fpn_channels": 32,
        "box_fc_channels": 64,
        "box_head_convs": 1,
        "mask_head_convs": 2,
        "anchor_sizes": (8, 16, 32, 64, 128),
        "rpn_pre_nms_top_n_train": 300,
        "rpn_post_nms_top_n_train": 100,
        "rpn_pre_nms_top_n_test": 300,
        "rpn_post_nms_top_n_test": 100,
        "box_batch_size_per_image": 64,
        **options,
    }
    return build_mask_rcnn(TinyEncoder(), num_classes=1, **settings)


def sample_from_labels(image: np.ndarray, label_image: np.ndarray, name: str) -> InstanceSample:
    """A normalised sample from an ``(H, W, 3)`` uint8 image and its label image."""
    tensor = torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)
    tensor = (tensor - tensor.mean((1, 2), keepdim=True)) / tensor.std((1, 2), keepdim=True)
    _, boxes = label_image_to_boxes(label_image)
    count = int(label_image.max())
    masks = label_image[None] == np.arange(1, count + 1)[:, None, None]
    return InstanceSample(
        image=tensor,
        masks=torch.from_numpy(masks),
        boxes=torch.from_numpy(boxes).float().reshape(-1, 4),
        labels=torch.ones(count, dtype=torch.int64),
        ids=torch.arange(count),
        id=name,
    )


def write_coco_dataset(root: Path, *, n_images: int = 4, size: int = 64) -> Path:
    """Synthetic images with a COCO JSON of RLE annotations, and its config."""
    rng = np.random.default_rng(3)
    (root / "images").mkdir(parents=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(n_images):
        image, label_image, _ = synthetic_instance_image(size, rng)
        Image.fromarray(image).save(root / "images" / f"{index:03d}.png")
        images.append(
            {"id": index + 1, "file_name": f"images/{index:03d}.png", "height": size, "width": size}
        )
        for rle in encode_label_image(label_image)[1]:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": 1,
                    "segmentation": rle,
                    "iscrowd": 0,
                }
            )
    coco = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "cell"}]}
    (root / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    config = root / "config.toml"
    config.write_text(
        'task = "instance"\n[data]\nformat = "coco"\nroot = "."\n'
        'annotations = "annotations.json"\n[data.split]\nmethod = "range"\n'
        f'train = ["0-{n_images - 2}"]\nval = ["*"]\n[model]\nname = "maskrcnn_resnet18_fpn"\n'
        f"[train]\ncrop_size = {size}\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize(
    ("layout", "variant"),
    [("kaggle", "two_class"), ("label_images", "one_class"), ("coco", "one_class")],
)
def test_every_format_trains_and_validates(tmp_path: Path, layout: str, variant: str) -> None:
    if layout == "coco":
        path = write_coco_dataset(tmp_path)
    else:
        path = write_synthetic_instances(
            tmp_path, n_images=4, size=64, variant=variant, layout=layout, seed=2
        )
    job = INSTANCE.build_job(load_config(path, TINY_SET), ("train", "val"), None)
    num_classes = 2 if variant == "two_class" else 1
    assert job.info.task == "instance" and len(job.info.class_names) == num_classes
    model: Any = job.model
    assert model.roi_heads.box_predictor.cls_score.out_features == num_classes + 1
    assert job.info.extra["anchors"]["source"] == "train split"
    assert job.info.model["anchor_sizes"] == job.info.extra["anchors"]["anchor_sizes"]
    train = job.datasets["train"]
    batch = job.collate([train[0], train[1]])
    job.model.train()
    outputs = job.task.step(job.model, batch)
    assert set(outputs) >= LOSS_KEYS and torch.isfinite(outputs["loss"])
    assert outputs["loss"].item() == pytest.approx(sum(outputs[k].item() for k in LOSS_KEYS))
    outputs["loss"].backward()
    assert model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    job.model.eval()
    metrics = job.task.make_metrics()
    val_batch = job.collate([job.datasets["val"][0]])
    with torch.no_grad():
        eval_outputs = job.task.step(job.model, val_batch)
    assert eval_outputs["loss"].item() == 0.0 and len(eval_outputs["detections"]) == 1
    job.task.update_metrics(metrics, eval_outputs, val_batch)
    result = metrics.compute()
    true_objects = len(val_batch.targets[0]["labels"])  # type: ignore[index]
    assert result["counting"]["true_objects"] == true_objects > 0
    assert 0.0 <= result["mask_ap"] <= 1.0 and result["coco"]["max_detections"] >= 100


def test_no_objects_and_hundreds_of_objects() -> None:
    empty = np.zeros((128, 128), dtype=np.int32)
    crowded = np.zeros((128, 128), dtype=np.int32)
    corners = [(y, x) for y in range(2, 124, 7) for x in range(2, 124, 7)][:300]
    for k, (y, x) in enumerate(corners, start=1):
        crowded[y : y + 5, x : x + 5] = k
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    batch = collate_detection(
        [sample_from_labels(image, empty, "empty"), sample_from_labels(image, crowded, "crowd")]
    )
    model = tiny_detector(box_score_thresh=0.0)
    task = InstanceTask(num_classes=1, class_names=["cell"])
    model.train()
    outputs = task.step(model, batch)
    assert torch.isfinite(outputs["loss"]) and outputs["loss_mask"] > 0
    outputs["loss"].backward()
    model.eval()
    metrics = task.make_metrics()
    with torch.no_grad():
        task.update_metrics(metrics, task.step(model, batch), batch)
    result = metrics.compute()
    per_image = result["counting"]["per_image"]
    assert [p["true_count"] for p in per_image] == [0, 300]
    assert result["coco"]["max_detections"] >= 300  # raised so no true object is cut
    assert model.roi_heads.detections_per_img == 500
    # Nothing true and nothing predicted anywhere: AP is undefined and reported as 0.
    nothing = InstanceMetrics()
    none = Detections(np.zeros((0, 32, 32), np.float32), np.zeros(0, np.float32), np.zeros(0))
    nothing.update(nothing.prediction(none), np.zeros((0, 32, 32), bool), np.zeros(0, np.int64))
    assert nothing.compute()["mask_ap"] == 0.0


def square_probs(size: int, corners: list[tuple[int, int]], side: int) -> np.ndarray:
    probs = np.zeros((len(corners), size, size), np.float32)
    for k, (y, x) in enumerate(corners):
        probs[k, y : y + side, x : x + side] = 0.9
    return probs


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_overlaps_resolved_by_score_with_sources() -> None:
    probs = square_probs(32, [(0, 0), (4, 4), (20, 20)], 10)
    detections = Detections(probs, np.array([0.6, 0.9, 0.2], np.float32), np.array([1, 2, 1]))
    label_image, sources = detection_label_image(
        detections, score_threshold=0.5, mask_threshold=0.5
    )
    # The 0.9 detection is label 1 and owns the overlap; the 0.2 one is dropped.
    assert sources.tolist() == [1, 0]
    assert (label_image[4:14, 4:14] == 1).all()
    assert label_image[0, 0] == 2 and label_image[25, 25] == 0
    entries = coco_results(
        label_image, detections.scores[sources], detections.labels[sources], image_id=7
    )
    assert [e["category_id"] for e in entries] == [2, 1]
    assert [e["score"] for e in entries] == pytest.approx([0.9, 0.6])
    for k, entry in enumerate(entries, start=1):
        decoded = coco_mask.decode(
            {**entry["segmentation"], "counts": entry["segmentation"]["counts"].encode()}
        )
        assert np.array_equal(decoded.astype(bool), label_image == k)
        assert entry["area"] == (label_image == k).sum()


def test_thresholds_tuned_for_counting() -> None:
    truth = np.zeros((2, 48, 48), bool)
    truth[0, 4:16, 4:16] = truth[1, 30:42, 30:42] = True
    probs = square_probs(48, [(4, 4), (30, 30), (20, 2)], 12)
    probs[:2][probs[:2] == 0] = 0.35  # a faint halo: only mask thresholds above it fit
    detections = Detections(probs, np.array([0.95, 0.85, 0.45], np.float32), np.ones(3))
    tuned = tune_thresholds([([detections], [truth])])
    assert tuned["score_threshold"] == 0.5 and tuned["mask_threshold"] == 0.4
    assert tuned["matching_ap50"] == 1.0 and tuned["count_mae"] == 0.0
    assert len(tuned["grid"]) == 35 and min(g["matching_ap50"] for g in tuned["grid"]) < 1.0


def test_tiny_backbone_overfits_touching_objects() -> None:
    rng = np.random.default_rng(0)
    samples = [
        sample_from_labels(*synthetic_instance_image(128, rng)[:2], name=str(i)) for i in range(4)
    ]
    assert sum(len(s.labels) for s in samples) >= 40
    batch = collate_detection(samples)
    model = tiny_detector()
    task = InstanceTask(num_classes=1, class_names=["cell"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    start = time.perf_counter()
    ap50, steps = 0.0, 0
    while time.perf_counter() - start < 90 and steps < 250:
        model.train()
        loss = task.step(model, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        steps += 1
        if steps >= 50 and steps % 10 == 0:
            model.eval()
            metrics = task.make_metrics()
            with torch.no_grad():
                task.update_metrics(metrics, task.step(model, batch), batch)
            ap50 = metrics.compute()["mask_ap50"]
            if ap50 > 0.9:
                break
    elapsed = time.perf_counter() - start
    assert ap50 > 0.9, f"mask AP50 {ap50:.3f} after {steps} steps ({elapsed:.0f} s)"
    assert elapsed < 90


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny instance run trained with ``pixelseg train`` (2 epochs), and its dataset."""
    root = tmp_path_factory.mktemp("instances")
    config = write_synthetic_instances(root / "data", n_images=4, size=64, seed=1)
    run = root / "run"
    sets = [argument for item in RUN_SET for argument in ("--set", item)]
    assert main(["train", str(config), "--out", str(run), "--device", "cpu", *sets]) == 0
    return run, root / "data"


def test_train_records_the_run(trained_run: tuple[Path, Path]) -> None:
    run, _ = trained_run
    info = json.loads((run / "run.json").read_text())
    assert info["task"] == "instance" and info["class_names"] == ["cell"]
    assert info["model"]["name"] == "maskrcnn_resnet18_fpn" and "options" not in info["model"]
    assert info["model"]["fpn_channels"] == 16 and info["model"]["norm"] == "group"
    tuned = json.loads((run / "postprocess.json").read_text())
    assert info["extra"]["postprocess"]["score_threshold"] == tuned["score_threshold"]
    assert info["extra"]["postprocess"]["mask_threshold"] == tuned["mask_threshold"]
    assert "matching AP" in tuned["criterion"] and len(tuned["grid"]) == 35
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "val_mask_ap" in json.loads(lines[0])
    assert (run / rd.BEST).is_file()


def test_checkpoint_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    path = write_synthetic_instances(tmp_path / "data", n_images=3, size=64, seed=4)
    config = load_config(path, [*TINY_SET, "model.options.box_score_thresh=0.0"])
    job = INSTANCE.build_job(config, ("train", "val"), None)
    optimizer = torch.optim.AdamW(job.model.parameters(), lr=1e-3)
    batch = job.collate([job.datasets["train"][0], job.datasets["train"][1]])
    for _ in range(2):  # move the weights away from their initialisation
        job.model.train()
        loss = job.task.step(job.model, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    writer = RunWriter(tmp_path / "run")
    writer.json("config.json", config.to_dict())
    writer.json("run.json", job.info.to_dict())
    save_checkpoint(tmp_path / "run" / rd.BEST, job.model)
    loaded = rd.load_model(tmp_path / "run")
    image = [job.datasets["val"][0].image]
    with torch.no_grad():
        (expected,) = job.model.eval()(image)
        (actual,) = loaded(image)
    assert expected["scores"].numel() > 0
    for key in ("boxes", "scores", "labels", "masks"):
        assert torch.equal(expected[key], actual[key]), key


def test_evaluate_command(trained_run: tuple[Path, Path], tmp_path: Path, capsys: Any) -> None:
    run, _ = trained_run
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(run), "--device", "cpu", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    tuned = json.loads((run / "postprocess.json").read_text())
    assert result["task"] == "instance" and result["num_images"] == 1
    assert result["thresholds"] == {
        "score": tuned["score_threshold"],
        "mask": tuned["mask_threshold"],
    }
    assert {"mask_ap", "coco", "matching_ap_pooled", "counting"} <= set(result)
    assert result["counting"]["true_objects"] > 0
    printed = capsys.readouterr().out
    assert "COCO mask AP" in printed and "matching AP" in printed


# pycocotools' decode trips NumPy 2's __array__ copy deprecation; not ours to fix.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_predict_command(trained_run: tuple[Path, Path], tmp_path: Path, capsys: Any) -> None:
    run, data = trained_run
    # An untrained-looking run keeps few detections: lower the stored thresholds for outputs.
    loose = tmp_path / "run"
    shutil.copytree(run, loose)
    info = json.loads((loose / "run.json").read_text())
    info["extra"]["postprocess"].update(score_threshold=0.0, mask_threshold=0.3)
    (loose / "run.json").write_text(json.dumps(info))
    out = tmp_path / "predictions"
    assert (
        main(["predict", str(loose), str(data / "images"), "--out", str(out), "--device", "cpu"])
        == 0
    )
    stems = sorted(p.stem for p in (data / "images").glob("*.png"))
    coco = COCO(str(out / "predictions_coco.json"))
    assert sorted(Path(i["file_name"]).stem for i in coco.dataset["images"]) == stems
    total = 0
    for image_entry in coco.dataset["images"]:
        stem = Path(image_entry["file_name"]).stem
        picture = Image.open(out / f"{stem}_instances.png")
        labels = np.asarray(picture)
        assert picture.mode.startswith("I;16") and labels.dtype == np.uint16
        assert labels.shape == (64, 64)
        assert Image.open(out / f"{stem}_overlay.png").mode == "RGB"
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image_entry["id"]]))
        assert len(annotations) == labels.max()
        for k, annotation in enumerate(annotations, start=1):
            assert np.array_equal(coco.annToMask(annotation).astype(bool), labels == k)
        total += len(annotations)
    assert total > 0
    assert coco.loadRes(coco.dataset["annotations"]) is not None
    capsys.readouterr()
    assert main(["predict", str(loose), str(data / "images"), "--out", str(out)]) == 0
    assert "predicted 0 image(s), skipped 4" in capsys.readouterr().out
    again = json.loads((out / "predictions_coco.json").read_text())
    assert len(again["annotations"]) == total


def test_non_mask_rcnn_model_is_refused(tmp_path: Path) -> None:
    path = write_synthetic_instances(tmp_path, n_images=2, size=64)
    config = load_config(path)
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, name="unet_resnet18")
    )
    with pytest.raises(ConfigError, match="Mask R-CNN"):
        INSTANCE.build_job(config, ("train", "val"), None)


def test_presets_are_registered_with_a_flat_config() -> None:
    from pixelseg.models import create_model, list_models

    assert {"maskrcnn_resnet18_fpn", "maskrcnn_resnet50_fpn"} <= set(list_models())
    model: Any = create_model("maskrcnn_resnet18_fpn", num_classes=2, in_channels=1, **TINY)
    assert model.config == {
        "name": "maskrcnn_resnet18_fpn",
        "num_classes": 2,
        "in_channels": 1,
        **TINY,
        "norm": "group",
    }
    rebuilt: Any = rd.build_model_from_info(
        rd.RunInfo("instance", ["a", "b"], [], 255, {}, dict(model.config), 1)
    )
    assert rebuilt.config == model.config
    assert rebuilt.rpn._post_nms_top_n["testing"] == TINY["rpn_post_nms_top_n_test"]
    with pytest.raises(ConfigError, match="unknown Mask R-CNN options"):
        create_model("maskrcnn_resnet18_fpn", num_classes=1, rpn_top_n=3)
