"""Inference fast paths: the measured choice keeps fp32's labels and prefers what is faster."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from pixelseg.cli import main
from pixelseg.inference.evaluate import evaluate_run
from pixelseg.inference.fast_path import (
    MIN_AGREEMENT,
    ChannelsLast,
    InferencePlan,
    fold_batch_norm,
    measure_plan,
    prepare_model,
)
from pixelseg.inference.predictor import Predictor
from pixelseg.structures import SemanticPrediction


def test_channels_last_wrapper_gives_the_plain_output() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU()).eval()
    batch = torch.randn(2, 3, 33, 40)
    with torch.no_grad():
        plain = model(batch)
        wrapped = prepare_model(model, InferencePlan("fp32", True, ""))
        assert isinstance(wrapped, ChannelsLast)
        torch.testing.assert_close(wrapped(batch), plain, atol=1e-5, rtol=1e-5)
        unwrapped = prepare_model(wrapped, InferencePlan("fp32", False, ""))
        assert unwrapped is model
        torch.testing.assert_close(unwrapped(batch), plain, atol=1e-5, rtol=1e-5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CostedTask:
    """A dense task whose forward costs fake seconds by path, and whose bf16 may be wrong."""

    dense_output = True

    def __init__(self, clock: FakeClock, costs: dict[str, float], bf16_wrong: bool) -> None:
        self.clock, self.costs, self.bf16_wrong = clock, costs, bf16_wrong

    def dense_forward(
        self, model: nn.Module, batch: torch.Tensor, *, autocast: Any
    ) -> torch.Tensor:
        bf16 = autocast is not contextlib.nullcontext
        path = "bf16" if bf16 else "cl" if isinstance(model, ChannelsLast) else "fp32"
        self.clock.now += self.costs[path]
        maps = torch.zeros(batch.shape[0], 2, *batch.shape[-2:])
        maps[:, 1 if bf16 and self.bf16_wrong else 0] = 1.0
        return maps


@pytest.mark.parametrize(
    ("costs", "bf16_wrong", "expected"),
    [
        ({"fp32": 1.0, "cl": 0.5, "bf16": 0.2}, False, "bf16+channels_last"),
        ({"fp32": 1.0, "cl": 0.5, "bf16": 0.2}, True, "fp32+channels_last"),  # bf16 disagrees
        ({"fp32": 1.0, "cl": 0.95, "bf16": 0.97}, False, "fp32"),  # within noise: keep fp32
    ],
)
def test_the_plan_is_the_fastest_path_that_agrees_with_fp32(
    costs: dict[str, float], bf16_wrong: bool, expected: str
) -> None:
    clock = FakeClock()
    task = CostedTask(clock, costs, bf16_wrong)
    model = nn.Conv2d(3, 2, 1)
    plan, laid_out = measure_plan(
        task,  # type: ignore[arg-type]
        model,
        torch.zeros(3, 500, 64),
        classes=2,
        device=torch.device("cpu"),
        native_bf16=lambda: True,
        clock=clock,
    )
    assert plan.name == expected
    assert isinstance(laid_out, ChannelsLast) == plan.channels_last
    assert "384x64 crop" in plan.reason and "bf16+channels_last" in plan.reason


def test_auto_precision_predicts_what_fp32_predicts(trained: tuple[Path, Path]) -> None:
    # A checkpoint trained inside the test session; whatever path auto measures fastest here,
    # its labels must equal fp32's on at least 99.5 % of the pixels.
    run_dir, image = trained
    auto = Predictor.from_run(run_dir, precision="auto")
    assert auto.plan is None  # measured on the first image, not before
    fast = auto.predict(image)
    assert auto.plan is not None and auto.plan.reason.startswith("auto:")
    assert "measured" in auto.plan.reason
    again = Predictor.from_run(run_dir, precision="auto")
    again.predict(image)  # the plan kept in the run: the same path, the same labels
    assert again.plan is not None and again.plan.name == auto.plan.name
    assert "measured earlier on this machine" in again.plan.reason
    fp32 = Predictor.from_run(run_dir, precision="fp32")
    assert fp32.plan is not None and fp32.plan.name == "fp32+channels_last"
    reference = fp32.predict(image)
    assert isinstance(fast, SemanticPrediction) and isinstance(reference, SemanticPrediction)
    agreement = float((fast.label_map == reference.label_map).float().mean())
    assert agreement >= MIN_AGREEMENT, f"{auto.plan.name}: {agreement:.4f} of pixels agree"


def test_evaluate_records_the_inference_plan(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, _ = trained
    result = evaluate_run(run_dir, precision="fp32")
    assert result["precision"] == "fp32"
    assert result["inference"]["plan"] == "fp32+channels_last"
    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(run_dir), "--precision", "fp32", "--json", str(out)]) == 0
    assert '"plan": "fp32+channels_last"' in out.read_text()


def test_batch_norm_folds_into_the_convolution_and_group_norm_does_not() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    model.train()
    model(torch.randn(4, 3, 16, 16))  # running statistics that are not the identity
    model.eval()
    folded = fold_batch_norm(model)
    assert folded is not None
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    batch = torch.randn(2, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(folded(batch), model(batch), atol=1e-5, rtol=1e-5)
        plan = InferencePlan("fp32", True, "", folded=True)
        prepared = prepare_model(model, plan)
        assert plan.name == "fp32+channels_last+bn_folded"
        torch.testing.assert_close(prepared(batch), model(batch), atol=1e-5, rtol=1e-5)
        assert prepare_model(prepared, InferencePlan("fp32", False, "")) is model
    grouped = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8))
    assert fold_batch_norm(grouped) is None
