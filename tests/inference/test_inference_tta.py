"""Test-time augmentation: the eight symmetries undone exactly, averaged; dense tasks only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.cli import main
from pixelseg.errors import ConfigError
from pixelseg.inference.predictor import Predictor
from pixelseg.inference.tta import SYMMETRIES, _apply, _undo, dense_probabilities, with_tta
from pixelseg.structures import InstancePrediction, SemanticPrediction


def test_each_symmetry_is_undone_on_a_non_square_batch() -> None:
    batch = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    assert len(set(SYMMETRIES)) == 8
    for turns, flip in SYMMETRIES:
        moved = _apply(batch, turns, flip)
        assert moved.shape[-2:] == ((7, 5) if turns % 2 else (5, 7))
        assert torch.equal(_undo(moved, turns, flip), batch)
    images = {tuple(_apply(batch, t, f).flatten().tolist()) for t, f in SYMMETRIES}
    assert len(images) == 8  # eight different views, not the same one eight times


def test_a_per_pixel_model_is_unchanged_and_a_lopsided_one_is_symmetrised() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 2, kernel_size=1)

    def per_pixel(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return conv(batch).softmax(1)

    image = torch.randn(1, 3, 8, 12)
    torch.testing.assert_close(with_tta(per_pixel)(image), per_pixel(image))

    def lopsided(batch: torch.Tensor) -> torch.Tensor:  # favours class 1 towards the right
        ramp = torch.linspace(-3, 3, batch.shape[-1]).expand(batch.shape[0], *batch.shape[-2:])
        return torch.stack([-ramp, ramp], dim=1).softmax(1)

    flat = torch.zeros(1, 3, 10, 10)  # an image every symmetry leaves alone
    averaged = with_tta(lopsided)(flat)
    for turns, flip in SYMMETRIES:  # ... so the averaged output is left alone by every one
        torch.testing.assert_close(_apply(averaged, turns, flip), averaged)
    assert not torch.allclose(lopsided(flat), averaged)


def test_tta_on_a_trained_run_predicts_and_the_cli_writes_it(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, image = trained
    plain = Predictor.from_run(run_dir).predict(image)
    averaged = Predictor.from_run(run_dir, tta=True).predict(image)
    assert isinstance(plain, SemanticPrediction) and isinstance(averaged, SemanticPrediction)
    assert averaged.probs.shape == plain.probs.shape
    torch.testing.assert_close(averaged.probs.sum(0), torch.ones(plain.probs.shape[1:]))
    assert not torch.allclose(averaged.probs, plain.probs)  # eight passes, not one
    assert main(["predict", str(run_dir), str(image), "--tta", "--out", str(tmp_path)]) == 0
    labels = np.asarray(Image.open(tmp_path / f"{image.stem}_label.png"))
    assert np.array_equal(labels, averaged.label_map.numpy().astype(labels.dtype))


def test_tta_with_tiles_and_without_agree_on_a_per_pixel_model() -> None:
    from pixelseg.inference.tiling import TileSpec

    conv = torch.nn.Conv2d(2, 3, kernel_size=1)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return conv(batch).softmax(1)

    image = torch.randn(2, 70, 90)
    whole = dense_probabilities(forward, image, None, tta=True)
    tiled = dense_probabilities(forward, image, TileSpec(32, 8), tta=True)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=0)


def test_tta_is_refused_for_a_mask_rcnn_run_and_runs_for_a_watershed_run(
    tmp_path: Path, untrained_run: Callable[[str, Path], tuple[Path, Path]]
) -> None:
    run_dir, image = untrained_run("instance", tmp_path / "instance")
    with pytest.raises(ConfigError, match="'instance' task predicts objects"):
        Predictor.from_run(run_dir, tta=True).predict(image)
    run_dir, image = untrained_run("watershed", tmp_path / "watershed")
    averaged = Predictor.from_run(run_dir, tta=True).predict(image)
    assert isinstance(averaged, InstancePrediction) and averaged.class_probs is not None
    plain = Predictor.from_run(run_dir).predict(image)
    assert isinstance(plain, InstancePrediction) and plain.class_probs is not None
    assert averaged.class_probs.shape == plain.class_probs.shape
    assert not np.allclose(averaged.class_probs, plain.class_probs)  # eight passes, not one


def test_evaluation_averages_over_the_symmetries_when_asked(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    import json

    from pixelseg.structures import Region

    run_dir, image = trained
    averaged, plain = Predictor.from_run(run_dir, tta=True), Predictor.from_run(run_dir)
    prepared = averaged.load(image)
    normalized = prepared.normalized
    whole = averaged.predict_normalized(normalized)
    predicted = averaged.predict_prepared(prepared)
    assert isinstance(whole, SemanticPrediction) and isinstance(predicted, SemanticPrediction)
    torch.testing.assert_close(whole.probs, predicted.probs)  # evaluate's path is predict's
    untouched = plain.predict_normalized(normalized)
    assert isinstance(untouched, SemanticPrediction)
    assert not torch.allclose(whole.probs, untouched.probs)
    # A padded image with its region gives the unpadded image's averaged prediction back.
    padded = torch.nn.functional.pad(normalized, (0, 24, 0, 8))
    cut = averaged.predict_normalized(padded, region=Region(tuple(normalized.shape[-2:])))
    assert isinstance(cut, SemanticPrediction)
    torch.testing.assert_close(cut.probs, whole.probs, atol=1e-5, rtol=0)
    out = tmp_path / "metrics.json"
    report = tmp_path / "report"
    assert (
        main(["evaluate", str(run_dir), "--tta", "--json", str(out), "--report", str(report)]) == 0
    )
    assert json.loads(out.read_text())["tta"] is True
