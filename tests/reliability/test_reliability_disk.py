"""A full disk, an unwritable folder, a NaN loss: one clear line, and nothing written is lost."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
import torch

from pixelseg.cli import main
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine import checkpoint
from pixelseg.engine.checkpoint import read_checkpoint

SETTINGS = [
    'model.name="unet"',
    "model.options={depth=2, base_width=4}",
    "train.epochs=2",
    "train.batch_size=2",
    "train.crop_size=32",
    "train.checkpoint_every_s=0.0",
]


class FakeSafetensorError(Exception):
    """What safetensors raises when the disk is full (its own type, not OSError)."""


def _train(config: Path, out: Path) -> int:
    args = ["train", str(config), "--out", str(out)]
    for setting in SETTINGS:
        args += ["--set", setting]
    return main(args)


def test_a_full_disk_during_a_checkpoint_is_one_line_and_the_last_one_stays_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIXELSEG_CRASH_DIR", str(tmp_path / "crashes"))
    config = write_synthetic_semantic(tmp_path / "data", n_images=8, size=32, seed=0)
    original = checkpoint.save_file
    calls = [0]

    def full_disk(tensors: Any, path: str, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] == 3:
            with open(path, "wb") as handle:  # part of the file made it to disk
                handle.write(b"\0" * 100)
            message = "Error while serializing: I/O error: No space left on device (os error 28)"
            raise FakeSafetensorError(message)
        original(tensors, path, **kwargs)

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    run = tmp_path / "run"
    assert _train(config, run) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "checkpoints" in err[0]
    assert not (tmp_path / "crashes").exists()  # the machine's problem: no crash log
    saved = list((run / "checkpoints").glob("*.safetensors"))
    assert saved, "the checkpoints written before the disk filled are gone"
    for path in saved:
        read_checkpoint(path)  # whole, not the truncated attempt
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the attempt was cleaned up


def test_an_unwritable_output_folder_is_one_line(
    trained: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import tempfile

    run_dir, image = trained
    out = tmp_path / "readonly"

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system", str(kwargs.get("dir", out)))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    monkeypatch.setenv("PIXELSEG_CRASH_DIR", str(tmp_path / "crashes"))
    assert main(["predict", str(run_dir), str(image), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Read-only file system" in err[-1] and str(out) in err[-1]
    assert not (tmp_path / "crashes").exists()


def test_a_nan_loss_stops_naming_the_step_and_keeps_the_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pixelseg.tasks.semantic.task import SemanticTask

    config = write_synthetic_semantic(tmp_path / "data", n_images=8, size=32, seed=0)
    original = SemanticTask.step
    steps = [0]

    def diverging(self: SemanticTask, model: torch.nn.Module, batch: Any) -> dict[str, Any]:
        outputs = original(self, model, batch)
        if model.training:
            steps[0] += 1
            if steps[0] == 4:
                outputs["loss"] = outputs["loss"] * float("nan")
        return outputs

    monkeypatch.setattr(SemanticTask, "step", diverging)
    run = tmp_path / "run"
    assert _train(config, run) == 1
    err = capsys.readouterr().err
    assert "loss is nan at step 3" in err and "lower train.lr" in err and "fp32" in err
    _, meta = read_checkpoint(run / "checkpoints" / "last.safetensors")
    assert meta["state"]["step"] <= 3  # the last good one, from before the NaN
