"""Checkpoints are safetensors: round trips are exact and pickles are refused unexecuted."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from pixelseg.engine.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from pixelseg.engine.run_dir import load_model, read_run
from pixelseg.errors import CheckpointError


class _Evil:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.sentinel,))


def test_round_trip_restores_model_optimizer_and_rng(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path / "c.safetensors", model, optimizer=optimizer, state={"step": 7}, with_rng=True
    )
    expected_draw = torch.rand(3)
    clone = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5))
    clone_opt = torch.optim.AdamW(clone.parameters(), lr=0.1)
    state = load_checkpoint(path, clone, optimizer=clone_opt, restore_rng_state=True)
    assert state == {"step": 7}
    assert torch.equal(torch.rand(3), expected_draw)
    for a, b in zip(model.parameters(), clone.parameters()):
        assert torch.equal(a, b)
    exp_avg = optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(clone_opt.state_dict()["state"][0]["exp_avg"], exp_avg)


def test_pickle_renamed_as_checkpoint_is_refused_without_running(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "best.safetensors"
    path.write_bytes(pickle.dumps(_Evil(sentinel)))
    with pytest.raises(CheckpointError, match="not a valid safetensors checkpoint"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path, torch.nn.Linear(2, 2))
    assert not sentinel.exists()


def test_missing_or_corrupted_run_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="run directory not found"):
        read_run(tmp_path / "nope")
    (tmp_path / "run").mkdir()
    with pytest.raises(CheckpointError, match=r"config\.json: missing"):
        load_model(tmp_path / "run")
    (tmp_path / "run" / "config.json").write_text("{")
    (tmp_path / "run" / "run.json").write_text("{}")
    with pytest.raises(CheckpointError, match="corrupted JSON"):
        read_run(tmp_path / "run")


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "w.safetensors", torch.nn.Linear(3, 2))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, torch.nn.Linear(4, 2))


def test_the_gradient_scaler_state_is_saved_and_restored(tmp_path: Path) -> None:
    # fp16 training on CUDA keeps a loss scale and a growth counter; a resumed run continues
    # them instead of starting again at 65536. The CPU scaler has the same state.
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=7)
    scaler.scale(torch.tensor(1.0))  # the scale tensor exists from the first use on
    scaler._scale.fill_(256.0)  # type: ignore[union-attr]  # as after two overflows
    scaler._growth_tracker.fill_(3)  # type: ignore[union-attr]
    model = torch.nn.Linear(2, 2)
    path = save_checkpoint(tmp_path / "last.safetensors", model, scaler=scaler)
    restored = torch.amp.GradScaler("cpu")
    load_checkpoint(path, model, scaler=restored)
    assert restored.get_scale() == 256.0
    assert restored.state_dict()["_growth_tracker"] == 3
    assert restored.get_growth_interval() == 7
    plain = save_checkpoint(tmp_path / "plain.safetensors", model)
    untouched = torch.amp.GradScaler("cpu", init_scale=8.0)
    load_checkpoint(plain, model, scaler=untouched)  # nothing saved: nothing changed
    assert untouched.get_scale() == 8.0
