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
    Compiled,
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


class Int8Stub(nn.Conv2d):
    """Stands for a quantised model in the fake measurements."""


class CostedTask:
    """A dense task whose forward costs fake seconds by path, and whose bf16 (or int8) may be
    wrong."""

    dense_output = True

    def __init__(
        self, clock: FakeClock, costs: dict[str, float], bf16_wrong: bool, int8_wrong: bool = False
    ) -> None:
        self.clock, self.costs, self.bf16_wrong = clock, costs, bf16_wrong
        self.int8_wrong = int8_wrong

    def dense_forward(
        self, model: nn.Module, batch: torch.Tensor, *, autocast: Any
    ) -> torch.Tensor:
        bf16 = autocast is not contextlib.nullcontext
        int8 = isinstance(model, Int8Stub)
        path = (
            "int8"
            if int8
            else "bf16"
            if bf16
            else "cl"
            if isinstance(model, ChannelsLast)
            else "fp32"
        )
        self.clock.now += self.costs[path]
        maps = torch.zeros(batch.shape[0], 2, *batch.shape[-2:])
        wrong = (bf16 and self.bf16_wrong) or (int8 and self.int8_wrong)
        maps[:, 1 if wrong else 0] = 1.0
        if int8 and self.int8_wrong:  # wrong on the first quarter of the rows only
            maps[:, :, batch.shape[-2] // 4 :] = torch.tensor([1.0, 0.0])[:, None, None]
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


@pytest.mark.parametrize(
    ("int8_cost", "int8_wrong", "offered", "expected"),
    [
        (0.1, False, True, "int8"),
        (0.1, True, True, "bf16+channels_last"),  # 75 % of the pixels agree: not chosen
        (0.19, False, True, "bf16+channels_last"),  # under 1.1x faster than bf16
        (0.1, False, False, "bf16+channels_last"),  # no calibration images: not a candidate
    ],
)
def test_int8_is_chosen_where_it_is_faster_and_agrees(
    int8_cost: float, int8_wrong: bool, offered: bool, expected: str
) -> None:
    clock = FakeClock()
    costs = {"fp32": 1.0, "cl": 0.5, "bf16": 0.2, "int8": int8_cost}
    task = CostedTask(clock, costs, bf16_wrong=False, int8_wrong=int8_wrong)
    stub = Int8Stub(3, 2, 1)
    plan, laid_out = measure_plan(
        task,  # type: ignore[arg-type]
        nn.Conv2d(3, 2, 1),
        torch.zeros(3, 64, 64),
        classes=2,
        device=torch.device("cpu"),
        native_bf16=lambda: True,
        int8=lambda: stub if offered else None,
        clock=clock,
    )
    assert plan.name == expected
    assert (laid_out is stub) == (expected == "int8")
    assert ("int8" in plan.reason) == offered
    if int8_wrong:
        assert "int8 10.00x (75.0% agree)" in plan.reason


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


def _small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU()).eval()


def test_a_compiled_model_gives_the_eager_output() -> None:
    model, batch = _small_net(), torch.randn(2, 3, 24, 32)
    compiled = Compiled(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(batch), model(batch), atol=1e-5, rtol=1e-5)
    assert compiled.failure is None


def _failing_compile(module: nn.Module, **_: Any) -> Any:
    def run(batch: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found\nmore")

    return run


def test_a_failed_compile_warns_and_runs_eagerly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "compile", _failing_compile)
    model, batch = _small_net(), torch.randn(1, 3, 16, 16)
    compiled = Compiled(model)
    with torch.no_grad(), pytest.warns(UserWarning, match="torch.compile failed, running eagerly"):
        out = compiled(batch)
    assert compiled.failure == "RuntimeError: InvalidCxxCompiler: no working C++ compiler found"
    with torch.no_grad():
        torch.testing.assert_close(out, model(batch))
        compiled(batch)  # warned once: later calls go straight to the eager module


def test_predictor_compiles_the_chosen_plan(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "compile", _failing_compile)  # the wiring, not inductor
    run_dir, image = trained
    predictor = Predictor.from_run(run_dir, precision="fp32", compile_model=True)
    assert predictor.plan is not None and predictor.plan.name == "fp32+channels_last+compiled"
    assert isinstance(predictor.model, Compiled)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        got = predictor.predict(image)
    reference = Predictor.from_run(run_dir, precision="fp32").predict(image)
    assert isinstance(got, SemanticPrediction) and isinstance(reference, SemanticPrediction)
    assert torch.equal(got.label_map, reference.label_map)
