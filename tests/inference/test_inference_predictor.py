"""One Predictor for every task: from_run picks the run's task; predict gives typed results."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.inference.predict import predict_files
from pixelseg.inference.predictor import Predictor
from pixelseg.structures import InstancePrediction, SemanticPrediction

UntrainedRun = Callable[[str, Path], tuple[Path, Path]]


@pytest.mark.parametrize("task_name", ["semantic", "watershed", "instance"])
def test_from_run_returns_the_runs_task_with_typed_predictions(
    task_name: str, tmp_path: Path, untrained_run: UntrainedRun
) -> None:
    run_dir, image_path = untrained_run(task_name, tmp_path)
    predictor = Predictor.from_run(run_dir, device="cpu")
    assert predictor.task.name == task_name
    image = np.asarray(Image.open(image_path).convert("RGB"))
    from_file = predictor.predict(image_path)
    from_array = predictor.predict(image)
    height, width = image.shape[:2]
    if task_name == "semantic":
        assert isinstance(from_file, SemanticPrediction)
        assert isinstance(from_array, SemanticPrediction)
        assert from_file.probs.shape == (len(predictor.class_names), height, width)
        assert torch.allclose(from_file.probs.sum(0), torch.ones(height, width), atol=1e-5)
        assert torch.equal(from_file.label_map, from_file.probs.argmax(0))
        assert torch.equal(from_file.label_map, from_array.label_map)
        return
    assert isinstance(from_file, InstancePrediction)
    assert isinstance(from_array, InstancePrediction)
    labels = from_file.label_image
    assert labels.shape == (height, width) and labels.dtype == np.int32
    count = int(labels.max())
    assert count > 0  # so the box check below checks something
    assert from_file.count == count == len(from_file.labels) == len(from_file.boxes)
    assert sorted(np.unique(labels[labels > 0]).tolist()) == list(range(1, count + 1))
    for k in range(1, count + 1):  # each box is the tight box of its object
        ys, xs = np.nonzero(labels == k)
        x1, y1, x2, y2 = from_file.boxes[k - 1]
        assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert np.array_equal(labels, from_array.label_image)
    if task_name == "watershed":
        assert from_file.class_probs is not None and from_file.class_probs.shape[0] == 3
    else:
        assert from_file.detections is not None


@pytest.mark.parametrize("task_name", ["semantic", "watershed", "instance"])
def test_predict_command_writes_what_the_prediction_type_asks(
    task_name: str, tmp_path: Path, untrained_run: UntrainedRun
) -> None:
    run_dir, image_path = untrained_run(task_name, tmp_path)
    predictor = Predictor.from_run(run_dir, device="cpu")
    out = tmp_path / "out"
    assert predict_files(predictor, [image_path], out) == (1, 0)
    label = "label" if task_name == "semantic" else "instances"
    written = Image.open(out / f"{image_path.stem}_{label}.png")
    prediction = predictor.predict(image_path)
    if isinstance(prediction, SemanticPrediction):
        assert written.mode == "P"
        assert np.array_equal(np.asarray(written), prediction.label_map.numpy())
    else:
        assert np.array_equal(np.asarray(written), prediction.label_image)
        assert (out / "predictions_coco.json").is_file()
    assert (out / f"{image_path.stem}_overlay.png").is_file()
    assert predict_files(predictor, [image_path], out) == (0, 1)


def test_band_count_other_than_training_is_refused_naming_the_file(
    tmp_path: Path, untrained_run: UntrainedRun
) -> None:
    run_dir, _ = untrained_run("semantic", tmp_path)
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(grey)
    from pixelseg.errors import DataError

    with pytest.raises(DataError, match=r"grey\.png.*1 bands; the model was trained on 3"):
        Predictor.from_run(run_dir, device="cpu").predict(grey)
