"""``train.tensorboard = true``: the logged curves also as TensorBoard scalars."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelseg.config import load_config
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.train import train


def test_the_curves_are_written_as_tensorboard_scalars(tmp_path: Path) -> None:
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=6, size=32, seed=0)
    settings = [
        'model.name="unet"', "model.options={depth=2, base_width=4}", "train.epochs=2",
        "train.batch_size=2", "train.crop_size=32", "train.tensorboard=true",
    ]  # fmt: skip
    train(load_config(config_path, settings), tmp_path / "run")
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events, "no event file"
    accumulator = event_accumulator.EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    assert {"train/train_loss", "train/lr", "val/miou"} <= tags
    assert len(accumulator.Scalars("val/miou")) >= 2  # one per validation
