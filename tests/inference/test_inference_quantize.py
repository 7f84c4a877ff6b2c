"""int8 post-training quantisation (torch.ao, x86): calibrated on training images, checked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from pixelseg.inference.fast_path import InferencePlan
from pixelseg.inference.plans import PLANS_FILE, plan_key, save_plan
from pixelseg.inference.predictor import Predictor
from pixelseg.inference.quantize import calibration_batches, quantize_int8
from pixelseg.structures import SemanticPrediction

pytestmark = pytest.mark.skipif(
    "x86" not in torch.backends.quantized.supported_engines, reason="no x86 quantised engine"
)


class _Item:
    def __init__(self, height: int, width: int) -> None:
        self.image = torch.ones(3, height, width)


def test_calibration_crops_are_padded_to_a_multiple_of_32_and_spread() -> None:
    items = [_Item(40, 300), _Item(64, 64), _Item(33, 31)]
    batches = calibration_batches(items, count=3)
    assert [tuple(b.shape) for b in batches] == [(1, 3, 64, 256), (1, 3, 64, 64), (1, 3, 64, 32)]
    assert float(batches[0][0, :, 40:].abs().sum()) == 0.0  # padded with zeros
    assert len(calibration_batches(items * 10, count=4)) == 4


class _Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.mean()) > 0:  # data-dependent control flow
            return self.conv(x)
        return -self.conv(x)


def test_a_model_torch_fx_cannot_trace_is_not_quantised() -> None:
    assert quantize_int8(_Untraceable(), [torch.rand(1, 3, 32, 32)]) is None


def test_int8_predicts_what_fp32_predicts_on_a_trained_run(trained: tuple[Path, Path]) -> None:
    run_dir, image = trained
    reference = Predictor.from_run(run_dir, precision="fp32", tile="off").predict(image)
    int8 = Predictor.from_run(run_dir, precision="int8", tile="off")
    got = int8.predict(image)
    assert int8.plan is not None and int8.plan.name == "int8"
    assert "training images" in int8.plan.reason
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in int8.model.modules())
    assert isinstance(got, SemanticPrediction) and isinstance(reference, SemanticPrediction)
    agreement = float((got.label_map == reference.label_map).float().mean())
    assert agreement >= 0.98, agreement


def test_a_kept_int8_plan_is_calibrated_again(trained: tuple[Path, Path], tmp_path: Path) -> None:
    # auto keeps its choice in the run, not the quantised model: a later Predictor that reads
    # an int8 plan quantises the weights again on the training images.
    run_dir = tmp_path / "run"
    shutil.copytree(trained[0], run_dir)
    (run_dir / PLANS_FILE).unlink(missing_ok=True)
    predictor = Predictor.from_run(run_dir, precision="auto", tile="off")
    kept = InferencePlan("int8", False, "auto: measured on a crop: int8 4.00x (99.9% agree)")
    save_plan(run_dir, plan_key(predictor), kept)
    got = predictor.predict(trained[1])
    assert predictor.plan is not None and predictor.plan.name == "int8"
    assert "measured earlier on this machine" in predictor.plan.reason
    modules = [type(m).__module__ for m in predictor.model.modules()]
    assert any(name.startswith("torch.ao.nn.quantized") for name in modules)
    reference = Predictor.from_run(run_dir, precision="int8", tile="off").predict(trained[1])
    assert isinstance(got, SemanticPrediction) and isinstance(reference, SemanticPrediction)
    assert torch.equal(got.label_map, reference.label_map)  # the same calibration, the same labels
