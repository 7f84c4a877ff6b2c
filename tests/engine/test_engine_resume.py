"""A run killed mid-epoch (SIGKILL) resumes and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import DETERMINISTIC_SETTINGS, single_thread_env
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine.checkpoint import read_checkpoint

SETTINGS = DETERMINISTIC_SETTINGS


def _train_cmd(config: Path, out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "pixelseg", "train", str(config), "--out", str(out)]
    for setting in SETTINGS:
        cmd += ["--set", setting]
    return cmd + list(extra)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    tensors, _ = read_checkpoint(run_dir / "checkpoints" / "last.safetensors")
    return {k: v for k, v in tensors.items() if k.startswith("model/")}


@pytest.mark.slow
def test_killed_run_resumes_to_identical_weights(tmp_path: Path) -> None:
    config = write_synthetic_semantic(tmp_path / "data", n_images=16, size=48, seed=1)
    reference = tmp_path / "reference"
    subprocess.run(
        _train_cmd(config, reference), env=single_thread_env(), check=True, capture_output=True
    )

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(config, killed),
        env=single_thread_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    checkpoint = killed / "checkpoints" / "last.safetensors"
    deadline = time.time() + 120
    state: dict = {}
    while time.time() < deadline and proc.poll() is None:
        if checkpoint.exists():
            try:
                state = read_checkpoint(checkpoint)[1]["state"]
            except Exception:  # replaced while we read it: try again
                state = {}
            # Kill in the second epoch, between batches (not at an epoch boundary).
            if state.get("epoch") == 1 and state.get("position", 0) >= 2:
                break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, meta = read_checkpoint(checkpoint)
    assert meta["state"]["epoch"] == 1 and meta["state"]["position"] > 0

    resumed = subprocess.run(
        _train_cmd(config, killed, "--resume"),
        env=single_thread_env(),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    ref_weights, new_weights = _weights(reference), _weights(killed)
    assert ref_weights.keys() == new_weights.keys()
    for name, value in ref_weights.items():
        assert torch.equal(value, new_weights[name]), f"{name} differs after resume"
