"""Folder prediction in batches: the same outputs as one image at a time, fewer passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.errors import ConfigError
from pixelseg.inference.batched import GPU_BATCH, batch_size, predict_batch
from pixelseg.inference.predict import predict_files
from pixelseg.inference.predictor import Predictor
from pixelseg.structures import SemanticPrediction


def test_batch_size_auto_is_one_on_a_cpu_and_more_on_a_gpu() -> None:
    assert batch_size("auto", torch.device("cpu")) == 1
    assert batch_size("auto", torch.device("cuda")) == GPU_BATCH
    assert batch_size("4", torch.device("cpu")) == 4
    for bad in ("0", "-2", "many"):
        with pytest.raises(ConfigError, match=f"--batch {bad}: expected auto"):
            batch_size(bad, torch.device("cpu"))


def _images(trained: tuple[Path, Path]) -> list[Path]:
    return sorted((trained[0].parent / "data").rglob("images/*.png"))


class CountingModel(torch.nn.Module):
    """The Predictor's model, counting forward passes."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module, self.calls = module, 0

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.module(batch)  # type: ignore[no-any-return]


def test_a_batch_predicts_what_single_images_do_in_one_pass(trained: tuple[Path, Path]) -> None:
    run_dir, _ = trained
    single = Predictor.from_run(run_dir, precision="fp32")
    batched = Predictor.from_run(run_dir, precision="fp32")
    counting = CountingModel(batched.model)
    batched.model = counting
    prepared = [batched.load(path) for path in _images(trained)[:4]]
    got = predict_batch(batched, prepared)
    assert counting.calls == 1  # four images of one size: one forward pass
    for item, prediction in zip(prepared, got):
        expected = single.predict_prepared(item)
        assert isinstance(prediction, SemanticPrediction)
        assert isinstance(expected, SemanticPrediction)
        torch.testing.assert_close(prediction.probs, expected.probs, atol=1e-5, rtol=1e-4)
        assert torch.equal(prediction.label_map, expected.label_map)


def test_images_of_other_sizes_or_with_tta_go_one_at_a_time(trained: tuple[Path, Path]) -> None:
    run_dir, big = trained
    predictor = Predictor.from_run(run_dir, precision="fp32")
    counting = CountingModel(predictor.model)
    predictor.model = counting
    small = predictor.load(_images(trained)[0])
    predict_batch(predictor, [small, predictor.load(big)])
    assert counting.calls == 2
    predictor.tta = True
    counting.calls = 0
    predict_batch(predictor, [small, small])
    assert counting.calls == 2 * 8  # every symmetry of each image


def test_folder_outputs_are_the_same_in_batches(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, big = trained
    large = tmp_path / "large.png"  # the small images' stems are 000..., as is big's
    shutil.copy(big, large)
    # Five small images with a large one in the middle: batches end at the size change.
    files = [*_images(trained)[:3], large, *_images(trained)[3:5]]
    outputs = {}
    for batch in (1, 3):
        predictor = Predictor.from_run(run_dir, precision="fp32")
        out = tmp_path / f"batch{batch}"
        assert predict_files(predictor, files, out, batch=batch) == (len(files), 0)
        outputs[batch] = {
            p.name: np.asarray(Image.open(p)) for p in sorted(out.glob("*_label.png"))
        }
    assert len(outputs[1]) == len(files)
    assert outputs[1].keys() == outputs[3].keys()
    for name, labels in outputs[1].items():
        assert np.array_equal(labels, outputs[3][name]), name
    again = Predictor.from_run(run_dir, precision="fp32")
    assert predict_files(again, files, tmp_path / "batch3", batch=3) == (0, len(files))
