"""One padding rule: evaluate's confusion matrix equals the one from predict's label PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelseg.config import load_config
from pixelseg.data.build import build_datasets
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import save_checkpoint
from pixelseg.engine.writer import RunWriter
from pixelseg.inference.evaluate import evaluate_run
from pixelseg.inference.predict import predict_files
from pixelseg.inference.predictor import Predictor
from pixelseg.metrics.confusion import ConfusionMatrix
from pixelseg.structures import SemanticPrediction
from pixelseg.tasks.registry import get_task

SETTINGS = [
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    'data.normalize="dataset"',  # band means far from 0: the padding rule shows
]


def test_evaluate_equals_predict_on_images_not_a_multiple_of_32(tmp_path: Path) -> None:
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=6, size=45, seed=2)
    config = load_config(config_path, SETTINGS)
    run_dir = tmp_path / "run"
    # Random weights: every input pixel moves the logits, so a padding difference would show.
    torch.manual_seed(0)
    job = get_task("semantic").build_job(config, ("train", "val"), None)
    writer = RunWriter(run_dir)
    writer.json("config.json", config.to_dict())
    writer.json("run.json", job.info.to_dict())
    save_checkpoint(run_dir / rd.BEST, job.model)
    result = evaluate_run(run_dir, split="val")
    predictor = Predictor.from_run(run_dir)
    val = build_datasets(config, ("val",), normalizer=predictor.normalizer, verify=False)["val"]
    files = [Path(sample.image) for sample in val.samples]
    out = tmp_path / "pred"
    assert predict_files(predictor, files, out) == (len(files), 0)
    names = list(result["per_class_iou"])
    confusion = ConfusionMatrix(len(names), ignore_index=val.ignore_index, class_names=names)
    for index, path in enumerate(files):
        # What evaluate feeds the model (the dataset's padded image) and what predict feeds it
        # (the file, padded by the Predictor) give the same probabilities, not just labels.
        evaluated = predictor.predict_normalized(val[index].image)
        predicted = predictor.predict(path)
        assert isinstance(evaluated, SemanticPrediction)
        assert isinstance(predicted, SemanticPrediction)
        torch.testing.assert_close(evaluated.probs[:, :45, :45], predicted.probs, atol=1e-5, rtol=0)
        label_map = np.asarray(Image.open(out / f"{path.stem}_label.png"))
        truth = val.load(index).label
        assert label_map.shape == truth.shape == (45, 45)
        confusion.update(
            torch.from_numpy(label_map.astype(np.int64))[None], torch.from_numpy(truth)[None]
        )
    assert confusion.compute()["confusion_matrix"] == result["confusion_matrix"]
