"""Export: ONNX and torch.export files predict what PyTorch predicts; bad files are named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from pixelseg.cli import main
from pixelseg.config import load_config
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import save_checkpoint
from pixelseg.engine.writer import RunWriter
from pixelseg.errors import CheckpointError, ConfigError
from pixelseg.inference.engines import load_onnx_predictor
from pixelseg.inference.predictor import Predictor
from pixelseg.structures import InstancePrediction, SemanticPrediction
from pixelseg.tasks.registry import get_task

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ARCHITECTURES = {
    "unet": ['model.name="unet"', "model.options={depth=2, base_width=8}"],
    "fcn8s": ['model.name="fcn8s_resnet18"'],
    "deeplabv3plus": ['model.name="deeplabv3plus_resnet18"'],
}


def _semantic_run(root: Path, settings: list[str]) -> tuple[Path, Path]:
    config_path = write_synthetic_semantic(root / "data", n_images=4, size=64, seed=5)
    config = load_config(config_path, settings)
    torch.manual_seed(0)
    job = get_task("semantic").build_job(config, ("train", "val"), None)
    run_dir = root / "run"
    writer = RunWriter(run_dir)
    writer.json("config.json", config.to_dict())
    writer.json("run.json", job.info.to_dict())
    save_checkpoint(run_dir / rd.BEST, job.model)
    return run_dir, sorted((root / "data").rglob("images/*.png"))[0]


@pytest.mark.slow
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_an_onnx_export_predicts_what_pytorch_predicts(tmp_path: Path, architecture: str) -> None:
    run_dir, image = _semantic_run(tmp_path, ARCHITECTURES[architecture])
    assert main(["export", str(run_dir), "--format", "onnx"]) == 0
    exported = run_dir / "export" / "model.onnx"
    onnx_predictor = load_onnx_predictor(exported)  # the file alone: no run directory read
    assert onnx_predictor.class_names == Predictor.from_run(run_dir).class_names
    reference = Predictor.from_run(run_dir, precision="fp32").predict(image)
    got = onnx_predictor.predict(image)
    assert isinstance(got, SemanticPrediction) and isinstance(reference, SemanticPrediction)
    torch.testing.assert_close(got.probs, reference.probs, atol=1e-4, rtol=1e-4)
    agreement = float((got.label_map == reference.label_map).float().mean())
    assert agreement >= 0.999


@pytest.mark.slow
def test_a_watershed_network_exports_and_keeps_its_post_processing(
    tmp_path: Path, untrained_run: Callable[[str, Path], tuple[Path, Path]]
) -> None:
    run_dir, image = untrained_run("watershed", tmp_path)
    out = tmp_path / "ws.onnx"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    got = load_onnx_predictor(out).predict(image)
    reference = Predictor.from_run(run_dir, precision="fp32").predict(image)
    assert isinstance(got, InstancePrediction) and isinstance(reference, InstancePrediction)
    assert got.class_probs is not None and reference.class_probs is not None
    np.testing.assert_allclose(got.class_probs, reference.class_probs, atol=1e-4)
    assert np.array_equal(got.label_image, reference.label_image)
    # predict --engine onnxruntime with the run directory finds RUN_DIR/export/model.onnx
    args = ["predict", str(run_dir), str(image), "--engine", "onnxruntime"]
    assert main([*args, "--out", str(tmp_path / "pred")]) == 1  # not exported there


@pytest.mark.slow
def test_a_torch_export_program_is_checked_and_saved(tmp_path: Path) -> None:
    run_dir, _ = _semantic_run(tmp_path, ARCHITECTURES["unet"])
    assert main(["export", str(run_dir), "--format", "torch-export"]) == 0
    program = torch.export.load(str(run_dir / "export" / "model.pt2")).module()
    batch = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        assert program(batch).shape == (2, 4, 64, 96)


@pytest.mark.slow
def test_a_mask_rcnn_exports_whole_and_predicts_what_pytorch_predicts(
    tmp_path: Path, untrained_run: Callable[[str, Path], tuple[Path, Path]]
) -> None:
    run_dir, image = untrained_run("instance", tmp_path)
    assert main(["export", str(run_dir), "--format", "onnx"]) == 0
    exported = run_dir / "export" / "model.onnx"
    got = load_onnx_predictor(exported).predict(image)
    reference = Predictor.from_run(run_dir, precision="fp32").predict(image)
    assert isinstance(got, InstancePrediction) and isinstance(reference, InstancePrediction)
    assert reference.count > 0  # untrained, every detection kept: something to compare
    assert got.count == reference.count
    np.testing.assert_allclose(got.scores, reference.scores, atol=1e-4)
    np.testing.assert_allclose(got.boxes, reference.boxes, atol=1e-2)
    assert float((got.label_image == reference.label_image).mean()) >= 0.999
    out = tmp_path / "pred"
    args = ["predict", str(run_dir), str(image), "--engine", "onnxruntime", "--out", str(out)]
    assert main(args) == 0
    assert list(out.glob("*_instances.png"))
    with pytest.raises(ConfigError, match="exports to ONNX only"):
        from pixelseg.export.torch_export import export_program

        export_program(run_dir, tmp_path / "m.pt2")
    assert not (tmp_path / "m.pt2").exists()


def test_a_truncated_or_foreign_file_is_named(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.onnx"
    truncated.write_bytes(b"\x08\x07\x12\x04junk")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_onnx_predictor(truncated)
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "foreign",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "foreign.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(foreign))
    with pytest.raises(CheckpointError, match="not a pixelseg export"):
        load_onnx_predictor(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_onnx_predictor(tmp_path / "missing.onnx")
