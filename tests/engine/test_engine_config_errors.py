"""Bad configs are refused naming the key, through the CLI as one line without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixelseg.cli import main
from pixelseg.config import load_config
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine.precision import resolve_device, resolve_precision
from pixelseg.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_unknown_key_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "[train]\nepochz = 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epochz'"):
        load_config(path)


def test_wrong_type_named(tmp_path: Path) -> None:
    path = _write(tmp_path, '[train]\nbatch_size = "four"\n')
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected an integer"):
        load_config(path)


def test_bad_choice_and_override(tmp_path: Path) -> None:
    path = _write(tmp_path, "[train]\nepochs = 3\n")
    with pytest.raises(ConfigError, match=r"train\.precision: 'fp8' is not one of"):
        load_config(path, ['train.precision="fp8"'])
    assert load_config(path, ["train.epochs=7"]).train.epochs == 7


def test_cli_reports_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "[model]\nnmae = 'x'\n")
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "unknown key 'model.nmae'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_data_root_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, '[data]\nroot = "../../shared/data/drive"\n')
    monkeypatch.setenv("PIXELSEG_DATA", str(tmp_path / "mydata"))
    assert load_config(path).data.root == str(tmp_path / "mydata" / "drive")


def test_data_root_env_override_leaves_other_roots_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIXELSEG_DATA", str(tmp_path / "mydata"))
    # Data beside the config: never redirected (it used to become $PIXELSEG_DATA/<config dir>).
    here = _write(tmp_path, '[data]\nroot = "."\n')
    assert load_config(here).data.root == str(tmp_path.resolve())
    elsewhere = _write(tmp_path, '[data]\nroot = "../my_images"\n')
    assert load_config(elsewhere).data.root == str((tmp_path / ".." / "my_images").resolve())
    absolute = _write(tmp_path, f'[data]\nroot = "{tmp_path / "abs"}"\n')
    assert load_config(absolute).data.root == str(tmp_path / "abs")


def test_fp16_on_the_cpu_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=4, size=32)
    args = ["train", str(config_path), "--out", str(tmp_path / "run"), "--precision", "fp16"]
    assert main([*args, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "precision 'fp16' is for CUDA" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_devices_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'gpu0' is not a device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="'fp8' is not one of"):
        resolve_precision("fp8", torch.device("cpu"))


def test_an_internal_error_is_one_line_with_a_crash_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pixelseg.data.check

    def broken(*args: object, **kwargs: object) -> int:
        raise ValueError("a bug, not the user's mistake")

    monkeypatch.setattr(pixelseg.data.check, "check_command", broken)
    monkeypatch.setenv("PIXELSEG_CRASH_DIR", str(tmp_path / "crashes"))
    assert main(["check", str(tmp_path / "c.toml")]) == 1
    err = capsys.readouterr().err
    assert "internal error: ValueError: a bug, not the user's mistake" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    (log,) = (tmp_path / "crashes").glob("pixelseg-crash-*.log")
    assert log.name in err
    text = log.read_text()
    assert text.startswith(f"pixelseg check {tmp_path / 'c.toml'}") and "Traceback" in text
