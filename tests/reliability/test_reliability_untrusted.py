"""Untrusted checkpoints: pickles never run, corrupt or lying safetensors give a clear error."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from pixelseg.cli import main
from pixelseg.engine.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from pixelseg.errors import CheckpointError


def _good(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "w.safetensors", torch.nn.Linear(64, 64))


def _header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _write(path: Path, header: dict, body: bytes) -> None:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + body)


@pytest.mark.parametrize("cut", [0, 4, 8, 20, 200, -100, -1])
def test_a_truncated_checkpoint_is_refused_naming_the_file(tmp_path: Path, cut: int) -> None:
    path = _good(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[:cut])
    with pytest.raises(CheckpointError, match=str(path)):
        read_checkpoint(path)


def test_a_header_that_lies_about_tensor_sizes_is_refused(tmp_path: Path) -> None:
    path = _good(tmp_path)
    header, body = _header(path)
    key = next(k for k in header if k != "__metadata__")
    start, _ = header[key]["data_offsets"]
    header[key]["data_offsets"] = [start, start + 10**12]  # a terabyte that is not there
    _write(path, header, body)
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        read_checkpoint(path)
    header[key]["data_offsets"] = [start, start + 8]
    header[key]["shape"] = [10**6, 10**6]  # shape and bytes disagree
    _write(path, header, body)
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        read_checkpoint(path)


def test_a_huge_header_length_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        read_checkpoint(path)


def test_foreign_or_corrupt_metadata_is_refused(tmp_path: Path) -> None:
    path = _good(tmp_path)
    header, body = _header(path)
    header["__metadata__"]["pixelseg"] = "{not json"
    _write(path, header, body)
    with pytest.raises(CheckpointError, match="corrupted checkpoint metadata"):
        read_checkpoint(path)
    del header["__metadata__"]
    _write(path, header, body)
    with pytest.raises(CheckpointError, match="without pixelseg metadata"):
        load_checkpoint(path, torch.nn.Linear(64, 64))


def test_predict_with_a_corrupt_checkpoint_is_one_line(
    trained: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shutil

    run_dir, image = trained
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    best = copy / "checkpoints" / "best.safetensors"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 3])
    monkeypatch.setenv("PIXELSEG_CRASH_DIR", str(tmp_path / "crashes"))
    assert main(["predict", str(copy), str(image), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(best) in err[0] and "not a valid safetensors" in err[0]
    assert not (tmp_path / "crashes").exists()
