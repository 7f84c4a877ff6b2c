"""The predict manifest: outputs of another checkpoint or other options are redone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import save_checkpoint
from pixelseg.engine.run_dir import load_model
from pixelseg.inference.manifest import MANIFEST, Manifest, file_sha256
from pixelseg.inference.predict import predict_command

UntrainedRun = Callable[[str, Path], tuple[Path, Path]]


def test_record_and_reload(tmp_path: Path) -> None:
    origin = {"run": "/r", "checkpoint": "best.safetensors", "sha256": "abc"}
    manifest = Manifest(tmp_path, origin)
    label, image = tmp_path / "sub" / "t_label.png", Path("/data/t.png")
    assert not manifest.is_current(label, image)
    manifest.record(label, image)
    manifest.save()
    again = Manifest(tmp_path, origin)
    assert again.is_current(label, image) and not again.is_current(label, Path("/other/t.png"))
    assert not Manifest(tmp_path, {**origin, "sha256": "def"}).is_current(label, image)
    (tmp_path / MANIFEST).write_text("{not json")
    assert not Manifest(tmp_path, origin).is_current(label, image)  # unreadable: redo


def test_new_weights_redo_the_outputs_and_overwrite_redoes_all(
    tmp_path: Path, untrained_run: UntrainedRun
) -> None:
    run_dir, image = untrained_run("semantic", tmp_path)
    out = tmp_path / "pred"
    kwargs = {"out": str(out), "device": "cpu"}
    assert predict_command(str(run_dir), [str(image)], **kwargs) == 0
    label = out / f"{image.stem}_label.png"
    first = label.stat().st_mtime_ns
    recorded = json.loads((out / MANIFEST).read_text())["outputs"][label.name]
    assert recorded["sha256"] == file_sha256(run_dir / rd.BEST) and recorded["input"] == str(image)
    assert predict_command(str(run_dir), [str(image)], **kwargs) == 0
    assert label.stat().st_mtime_ns == first  # same run, same weights: skipped
    # Other weights under the same run name: the old outputs are not "already done".
    model = load_model(run_dir)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)
    save_checkpoint(run_dir / rd.BEST, model)
    assert predict_command(str(run_dir), [str(image)], **kwargs) == 0
    assert label.stat().st_mtime_ns != first
    second = label.stat().st_mtime_ns
    assert predict_command(str(run_dir), [str(image)], tta=True, **kwargs) == 0  # other options
    third = label.stat().st_mtime_ns
    assert third != second
    assert predict_command(str(run_dir), [str(image)], tta=True, overwrite=True, **kwargs) == 0
    assert label.stat().st_mtime_ns != third


def test_ddp_parts_are_read_by_any_later_run_and_merged(tmp_path: Path) -> None:
    from pixelseg.inference.manifest import merge_parts

    origin = {"run": "r", "checkpoint": "best.safetensors", "sha256": "x"}
    (tmp_path / "a_label.png").write_bytes(b"")
    old = Manifest(tmp_path, {**origin, "sha256": "old"})
    old.record(tmp_path / "a_label.png", Path("a.png"))
    old.record(tmp_path / "b_label.png", Path("b.png"))
    old.save()
    part = Manifest(tmp_path, origin, rank=1)  # a rank redoes a.png with a new checkpoint
    part.record(tmp_path / "a_label.png", Path("a.png"))
    part.save()
    saved = json.loads((tmp_path / ".manifest-rank1.json").read_text())["outputs"]
    assert list(saved) == ["a_label.png"]  # a part holds only what its rank wrote
    later = Manifest(tmp_path, origin)  # a run killed before the merge: the part still counts
    assert later.is_current(tmp_path / "a_label.png", Path("a.png"))
    assert not later.is_current(tmp_path / "b_label.png", Path("b.png"))
    merge_parts(tmp_path)
    assert not list(tmp_path.glob(".manifest-rank*.json"))
    merged = json.loads((tmp_path / MANIFEST).read_text())["outputs"]
    assert merged["a_label.png"]["sha256"] == "x" and merged["b_label.png"]["sha256"] == "old"
