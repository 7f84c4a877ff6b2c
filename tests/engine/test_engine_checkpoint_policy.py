"""The checkpoint policy: ``last`` by time with the resume state, ``best`` weights only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import read_checkpoint
from pixelseg.engine.checkpoint_policy import CheckpointPolicy
from pixelseg.engine.clock import Clock
from pixelseg.engine.writer import RunWriter


@dataclass
class State:
    step: int = 0
    elapsed: float = 0.0


def test_last_is_due_by_time_and_records_the_elapsed_time(tmp_path: Path) -> None:
    now = [0.0]
    clock = Clock(10.0, now=lambda: now[0])
    model = nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    policy = CheckpointPolicy(RunWriter(tmp_path), model, optimizer, clock=clock, every_s=60.0)
    assert not policy.due()
    now[0] = 59.0
    assert not policy.due()
    now[0] = 60.0
    assert policy.due()
    state = State(step=7)
    policy.save_last(state)
    assert not policy.due() and state.elapsed == 70.0
    tensors, meta = read_checkpoint(tmp_path / rd.LAST)
    assert meta["state"] == {"step": 7, "elapsed": 70.0}
    assert "optimizer" in meta and "rng" in meta
    assert any(key.startswith("model/") for key in tensors)


def test_best_holds_weights_and_state_without_optimizer(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    policy = CheckpointPolicy(
        RunWriter(tmp_path),
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        clock=Clock(),
        every_s=600.0,
    )
    policy.save_best(State(step=3))
    tensors, meta = read_checkpoint(tmp_path / rd.BEST)
    assert meta["state"]["step"] == 3 and "optimizer" not in meta
    assert torch.equal(tensors["model/weight"], model.weight.detach())
