"""Shared fixtures: the shared real datasets (required in CI) and small runs for inference."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from pixelseg.config import load_config
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import save_checkpoint
from pixelseg.engine.writer import RunWriter
from pixelseg.tasks.registry import get_task
from pixelseg.train import train

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PIXELSEG_SHARED_DATA", REPO.parent / "shared" / "data"))
CONFIGS = REPO / "configs"

# Two cores: keep each test single-threaded so timings are stable and helpers do not fight.
torch.set_num_threads(1)


def shared_dataset(name: str) -> Path:
    """Path of ``../shared/data/<name>``; skip (or fail when ``CI=true``) if it is missing."""
    path = SHARED_DATA / name
    if not path.is_dir():
        message = (
            f"shared dataset {path} is missing: get it as its README in docs/data.md says "
            "(or set PIXELSEG_SHARED_DATA)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI=true requires it")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data() -> Path:
    """The folder holding the shared datasets (skips / fails as :func:`shared_dataset`)."""
    if not SHARED_DATA.is_dir():
        shared_dataset("")
    return SHARED_DATA


# A tiny deterministic run, for the kill-and-resume tests (bitwise-equal weights on the CPU).
DETERMINISTIC_SETTINGS = [
    'model.name="unet"',
    "model.options={depth=2, base_width=4}",
    "train.epochs=3",
    "train.batch_size=2",
    "train.crop_size=32",
    'train.precision="fp32"',
    "train.deterministic=true",
    "train.checkpoint_every_s=0.0",
    "train.warmup_steps=2",
]


def single_thread_env() -> dict[str, str]:
    """The environment with one thread per process: the same float summation order in every
    process, so a resumed run's weights can match an uninterrupted run's exactly."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# Runs shared by the inference tests (tiling, TTA, predictor, manifest).
TRAINED_SETTINGS = [
    'model.name="unet"',
    "model.options={depth=2, base_width=8}",
    "train.epochs=4",
    "train.batch_size=4",
    "train.crop_size=32",
    "train.lr=0.01",
]


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small U-Net trained for a few epochs, and one 200x200 synthetic image to predict."""
    root = tmp_path_factory.mktemp("trained_semantic")
    config_path = write_synthetic_semantic(root / "data", n_images=12, size=48, seed=3)
    train(load_config(config_path, TRAINED_SETTINGS), root / "run")
    big = write_synthetic_semantic(root / "big", n_images=2, size=200, seed=9)
    return root / "run", sorted(big.parent.rglob("images/*.png"))[0]


UNTRAINED_SETTINGS = {
    "semantic": ['model.name="unet"', "model.options={depth=2, base_width=8}"],
    "watershed": ['task="watershed"', 'model.name="unet"', "model.options={depth=2, base_width=8}"],
    "instance": [
        "model.options.fpn_channels=16",
        "model.options.box_fc_channels=32",
        "model.options.rpn_pre_nms_top_n_test=50",
        "model.options.rpn_post_nms_top_n_test=16",
        # Untrained: keep every detection so the label image is not empty by chance.
        "model.options.box_score_thresh=0.0",
    ],
}


def _untrained_run(task_name: str, root: Path) -> tuple[Path, Path]:
    """A run directory of a freshly built (untrained) job, and one of its images."""
    if task_name == "semantic":
        config_path = write_synthetic_semantic(root / "data", n_images=6, size=64)
    else:
        config_path = write_synthetic_instances(root / "data", n_images=4, size=64)
    config = load_config(config_path, UNTRAINED_SETTINGS[task_name])
    torch.manual_seed(0)
    job = get_task(config.task).build_job(config, ("train", "val"), None)
    run_dir = root / "run"
    writer = RunWriter(run_dir)
    writer.json("config.json", config.to_dict())
    writer.json("run.json", job.info.to_dict())
    save_checkpoint(run_dir / rd.BEST, job.model)
    image = sorted((root / "data").rglob("*.png"))[0]
    return run_dir, image


@pytest.fixture
def untrained_run() -> Callable[[str, Path], tuple[Path, Path]]:
    """``(task name, folder) -> (run directory, one image)`` of an untrained job of that task."""
    return _untrained_run
