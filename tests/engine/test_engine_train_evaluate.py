"""Train a tiny model, reload the best checkpoint, evaluate and predict through the CLI pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelseg.cli import main
from pixelseg.config import load_config
from pixelseg.data.check import check_dataset
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine.run_dir import config_changes
from pixelseg.inference.evaluate import evaluate_run
from pixelseg.inference.predict import predict_files
from pixelseg.inference.predictor import Predictor
from pixelseg.train import refuse_existing_run, train

SETTINGS = [
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    "train.epochs=3",
    "train.batch_size=4",
    "train.crop_size=32",
    "train.lr=0.01",
    "train.warmup_steps=1",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("train")
    config_path = write_synthetic_semantic(root / "data", n_images=12, size=48, seed=3)
    train(load_config(config_path, SETTINGS), root / "run")
    return config_path, root / "run"


def test_run_directory_holds_everything_needed(trained_run: tuple[Path, Path]) -> None:
    config_path, run_dir = trained_run
    for name in ("config.json", "run.json", "metrics.jsonl", "train.log", "summary.json"):
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["class_names"] == ["background", "vegetation", "road", "building"]
    assert len(info["normalizer"]["mean"]) == 3
    assert info["loss"]["name"] == "dice_ce"  # the synthetic data is imbalanced on purpose
    assert "building" in info["loss"]["reason"]
    report = check_dataset(load_config(config_path, SETTINGS))  # check prints the same rule
    assert report.loss_reason == info["loss"]["reason"] and report.recommended_weighting == "median"
    assert info["loss"]["weighting"] == "median"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert not list(run_dir.rglob("*.tmp")), "temporary files left behind"


def test_best_checkpoint_reloads_and_evaluates_to_the_same_numbers(
    trained_run: tuple[Path, Path],
) -> None:
    _, run_dir = trained_run
    summary = json.loads((run_dir / "summary.json").read_text())
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best = records[summary["best_epoch"] - 1]
    result = evaluate_run(run_dir, split="val")
    assert result["miou"] == pytest.approx(best["val_miou"], abs=1e-6)
    assert result["pixel_accuracy"] == pytest.approx(best["val_pixel_accuracy"], abs=1e-6)
    assert result["miou"] == pytest.approx(summary["best_miou"], abs=1e-6)


def test_evaluate_cli_prints_per_class_table_and_writes_json(
    trained_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run_dir = trained_run
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run_dir), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "dataset-level" in printed and "majority-class baseline" in printed
    for name in ("background", "vegetation", "road", "building"):
        assert name in printed
    metrics = json.loads(out.read_text())
    assert set(metrics["per_class_iou"]) == {"background", "vegetation", "road", "building"}
    assert (run_dir / "eval" / "val" / "confusion.png").is_file()
    page = (run_dir / "eval" / "val" / "report.html").read_text()
    assert "data:image/png;base64," in page and "majority-class baseline" in page


def test_predict_writes_palette_labels_and_resumes(
    trained_run: tuple[Path, Path], tmp_path: Path
) -> None:
    config_path, run_dir = trained_run
    predictor = Predictor.from_run(run_dir, device="cpu")
    files = sorted((config_path.parent / "images").glob("*.png"))[:3]
    out = tmp_path / "pred"
    assert predict_files(predictor, files, out) == (3, 0)
    label = Image.open(out / f"{files[0].stem}_label.png")
    assert label.mode == "P" and label.size == (48, 48)
    expected = predictor.predict(files[0]).label_map.numpy()
    assert np.array_equal(np.asarray(label), expected)
    (out / f"{files[1].stem}_label.png").unlink()
    assert predict_files(predictor, files, out) == (1, 2)


def test_resume_without_checkpoint_is_a_clear_error(
    trained_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path, _ = trained_run
    code = main(["train", str(config_path), "--out", str(tmp_path / "empty"), "--resume"])
    assert code == 1
    assert "nothing to resume" in capsys.readouterr().err


def test_non_finite_loss_stops_naming_the_step(tmp_path: Path) -> None:
    from pixelseg.engine.loop import LoopState, NonFiniteLossError, train_one_epoch
    from pixelseg.structures import Batch

    class NanTask:
        name = "nan"
        primary_metric = "loss"

        def step(self, model: torch.nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
            return {"loss": model(batch.images).sum() * float("nan")}

    model = torch.nn.Conv2d(1, 1, 1)
    before = model.weight.detach().clone()
    batch = Batch(torch.ones(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), ["a"])
    with pytest.raises(NonFiniteLossError, match="at step 5"):
        train_one_epoch(
            model,
            NanTask(),
            [batch],
            torch.optim.SGD(model.parameters(), lr=1.0),  # type: ignore[arg-type]
            state=LoopState(step=5),
            set_lr=lambda _: None,
            autocast=lambda: torch.autocast("cpu", enabled=False),
            device=torch.device("cpu"),
        )
    assert torch.equal(model.weight, before)


def test_unknown_early_stopping_metric_is_named(tmp_path: Path) -> None:
    from pixelseg.errors import ConfigError

    config_path = write_synthetic_semantic(tmp_path / "data", n_images=6, size=32, seed=0)
    settings = [*SETTINGS, "train.epochs=1", 'train.early_stopping_metric="mIoU"']
    with pytest.raises(ConfigError, match=r"'mIoU' is not a validation metric.*miou"):
        train(load_config(config_path, settings), tmp_path / "run")


def test_validation_every_second_epoch_and_after_the_last(tmp_path: Path) -> None:
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=6, size=32, seed=0)
    settings = [*SETTINGS, "train.val_every=2"]  # 3 epochs: validated after 2 and 3
    train(load_config(config_path, settings), tmp_path / "run")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert ["val_miou" in r for r in records] == [False, True, True]


def test_training_into_an_old_run_is_refused_unless_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=4, size=32)
    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    (old / "metrics.jsonl").write_text('{"epoch": 1}\n')
    (old / "checkpoints" / "last.safetensors").write_bytes(b"x")
    (old / "notes.txt").write_text("mine")
    assert main(["train", str(config_path), "--out", str(old)]) == 1
    err = capsys.readouterr().err
    assert f"{old} already holds a run (metrics.jsonl, checkpoints): --resume" in err
    assert len(err.strip().splitlines()) == 1
    assert (old / "metrics.jsonl").read_text() == '{"epoch": 1}\n'  # untouched
    refuse_existing_run(old, resume=True, overwrite=False)  # resuming is what it is for
    refuse_existing_run(old, resume=False, overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == ["notes.txt"]  # only the run's files go
    refuse_existing_run(tmp_path / "new", resume=False, overwrite=False)


def test_config_changes_lists_nested_keys() -> None:
    old = {"train": {"lr": 0.01, "epochs": 3}, "task": "semantic"}
    new = {"train": {"lr": 0.5, "epochs": 3}, "task": "semantic", "extra": 1}
    assert config_changes(old, new) == ["extra: None -> 1", "train.lr: 0.01 -> 0.5"]
    assert config_changes(old, old) == []


def test_resume_says_which_changes_it_cannot_honour(tmp_path: Path) -> None:
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=4, size=32)
    settings = [*SETTINGS[:2], "train.epochs=1", "train.batch_size=2", "train.crop_size=32"]
    train(load_config(config_path, settings), tmp_path / "run")
    changed = load_config(config_path, [*settings, "train.lr=0.5", "train.max_time=60"])
    train(changed, tmp_path / "run", resume=True)
    log = (tmp_path / "run" / "train.log").read_text()
    assert "--resume continues the run as it was configured; ignored: train.lr:" in log
    assert "-> 0.5" in log and "max_time" not in log.split("ignored:")[1].split("(only")[0]


def test_train_ends_with_the_val_headline_and_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=4, size=32)
    sets = [f"--set={s}" for s in SETTINGS[:2]]
    sets += ["--set=train.epochs=1", "--set=train.batch_size=2", "--set=train.crop_size=32"]
    assert main(["train", str(config_path), "--out", str(tmp_path / "run"), *sets]) == 0
    tail = capsys.readouterr().out.split("time budget")[-1]
    assert "mIoU" in tail and "majority-class baseline" in tail
    assert (tmp_path / "run" / "eval" / "val" / "report.html").is_file()
    out = tmp_path / "quiet"
    assert main(["train", str(config_path), "--out", str(out), *sets, "--no-report"]) == 0
    assert "majority-class baseline" not in capsys.readouterr().out
    assert not (out / "eval").exists()
