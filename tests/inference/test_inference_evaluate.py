"""``pixelseg evaluate``: which weights, which split chose them, other data, a moved run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pixelseg.cli import main
from pixelseg.config import load_config
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.errors import ConfigError, DataError
from pixelseg.inference.evaluate import evaluate_run
from pixelseg.models.registry import create_model
from pixelseg.train import train

SETTINGS = [
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    "train.epochs=2",
    "train.crop_size=32",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    config_path = write_synthetic_semantic(root / "data", n_images=8, size=40, seed=5)
    train(load_config(config_path, SETTINGS), root / "run")
    return config_path, root / "run"


def test_checkpoint_last_is_evaluated_and_named(
    run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = run
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run_dir), "--checkpoint", "last", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["checkpoint"] == "last"
    assert "chose this (best) checkpoint" not in capsys.readouterr().out


def test_val_split_that_chose_the_checkpoint_says_so(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = run
    assert main(["evaluate", str(run_dir), "--split", "val"]) == 0
    printed = capsys.readouterr().out
    assert "the val split chose this (best) checkpoint" in printed
    report = (run_dir / "eval" / "val" / "report.md").read_text()
    assert "**note**: the val split chose this (best) checkpoint" in report
    assert evaluate_run(run_dir, split="val")["notes"]


def test_other_data_with_other_classes_is_refused(run: tuple[Path, Path], tmp_path: Path) -> None:
    config_path, run_dir = run
    other = tmp_path / "other.toml"
    text = config_path.read_text()
    other.write_text(text.replace('"road"', '"street"'))
    with pytest.raises(ConfigError, match=r"are not the run's .*names and order"):
        evaluate_run(run_dir, data=str(other), split="val")


def test_a_moved_run_evaluates_with_data(run: tuple[Path, Path], tmp_path: Path) -> None:
    config_path, run_dir = run
    moved_run = tmp_path / "moved_run"
    moved_data = tmp_path / "moved_data"
    shutil.copytree(run_dir, moved_run)
    shutil.copytree(config_path.parent, moved_data)
    config = json.loads((moved_run / "config.json").read_text())
    config["data"]["root"] = str(tmp_path / "gone")  # the machine it was trained on
    (moved_run / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="with --data CONFIG"):
        evaluate_run(moved_run, split="val")
    result = evaluate_run(moved_run, data=str(moved_data / config_path.name), split="val")
    assert result["miou"] == pytest.approx(evaluate_run(run_dir, split="val")["miou"])
    # Other data: it chose nothing in the run; only the training loss is said.
    assert [n for n in result["notes"] if not n.startswith("trained with loss")] == []
    assert any(n.startswith("trained with loss") for n in result["notes"])


def test_pretrained_batchnorm_weights_into_groupnorm_are_refused() -> None:
    with pytest.raises(ConfigError, match="BatchNorm statistics into GroupNorm"):
        create_model("unet_resnet18", num_classes=2, weights="imagenet", norm="group")
