"""DDP under torchrun on the CPU (gloo on loopback, 2 processes): evaluation equals one process,
2 ranks x B equals 1 x 2B, a killed run resumes, a killed rank ends the job."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixelseg.config import load_config
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine.data_order import EpochSampler
from pixelseg.train import train

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="this torch build has no torch.distributed"
)

#: A GroupNorm U-Net (nothing batch-dependent) with a per-sample loss (plain cross-entropy).
SETTINGS = [
    'model.name="unet"',
    'model.options={depth=2, base_width=8, norm="group"}',
    'loss.name="ce"',
    'loss.class_weighting="none"',
    "train.crop_size=32",
    'train.precision="fp32"',
    "train.num_workers=0",
    "train.augment=false",
    "train.warmup_steps=0",
    "train.warmup_fraction=0.0",
]
WORKER = Path(__file__).with_name("ddp_worker.py")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(*args: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_port()), *args,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return env


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)


def _start(command: list[str]) -> subprocess.Popen[str]:
    """The job in its own session (so that one signal can reach every process of it)."""
    return subprocess.Popen(
        command, env=_env(), text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip


def _train_args(config: Path, out: Path, settings: list[str]) -> list[str]:
    return ["-m", "pixelseg", "train", str(config), "--out", str(out), "--no-report"] + [
        f"--set={s}" for s in settings
    ]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_file(str(run / "checkpoints" / "last.safetensors"))
    return {k: v for k, v in state.items() if k.startswith("model/")}


def test_the_ranks_share_each_global_batch_as_one_process_draws_it() -> None:
    one = EpochSampler(10, 16, 4, seed=3)
    ranks = [EpochSampler(10, 16, 2, seed=3, rank=r, world=2) for r in range(2)]
    accumulated = EpochSampler(10, 16, 1, seed=3, rank=1, world=2, accumulate=2)
    for step, batch in enumerate(one.batches()):
        assert [*ranks[0].batches()[step], *ranks[1].batches()[step]] == batch
        assert accumulated.batches()[2 * step] == batch[1:2]  # micro-batch 0, rank 1
        assert accumulated.batches()[2 * step + 1] == batch[3:4]
    assert len(accumulated) == 2 * one.steps_per_epoch == 2 * len(one)


@pytest.mark.slow
def test_one_ddp_step_of_2_ranks_x_b_equals_one_step_of_2b(tmp_path: Path) -> None:
    config = write_synthetic_semantic(tmp_path / "data", n_images=6, size=48, seed=1)
    step = [*SETTINGS, "train.epochs=1", "train.samples_per_epoch=4"]
    single = tmp_path / "single"
    train(load_config(config, [*step, "train.batch_size=4"]), single)
    ddp = tmp_path / "ddp"
    done = _run(_torchrun(*_train_args(config, ddp, [*step, "train.batch_size=2"])))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "global batch 4 (2 process(es) x 2 x 1 accumulated)" in (ddp / "train.log").read_text()
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["steps"] == 1 and summary["images_seen"] == 4
    expected, got = _weights(single), _weights(ddp)
    assert expected.keys() == got.keys()
    assert max(float((got[k] - expected[k]).abs().max()) for k in expected) < 1e-5
    half = tmp_path / "half"  # a step on half the batch lands elsewhere: the check can fail
    train(load_config(config, [*step, "train.batch_size=2", "train.samples_per_epoch=2"]), half)
    assert max(float((_weights(half)[k] - expected[k]).abs().max()) for k in expected) > 1e-4
    accumulated = tmp_path / "accumulated"
    train(
        load_config(config, [*step, "train.batch_size=2", "train.accumulate_steps=2"]), accumulated
    )
    got = _weights(accumulated)
    assert max(float((got[k] - expected[k]).abs().max()) for k in expected) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("task", ["semantic", "watershed"])
def test_ddp_evaluation_equals_one_process(tmp_path: Path, task: str) -> None:
    if task == "semantic":
        config = write_synthetic_semantic(tmp_path / "data", n_images=12, size=48, seed=2)
        settings = [*SETTINGS, "train.epochs=1", "train.batch_size=2", "train.samples_per_epoch=4"]
    else:
        config = write_synthetic_instances(tmp_path / "data", n_images=10, size=48, seed=2)
        settings = [
            'task="watershed"', 'model.name="unet"', "model.options={depth=2, base_width=8}",
            "train.epochs=1", "train.batch_size=2", "train.samples_per_epoch=4",
            "train.crop_size=32", 'train.precision="fp32"', "train.num_workers=0",
        ]  # fmt: skip
    run = tmp_path / "run"
    train(load_config(config, settings), run)
    out = tmp_path / "ddp.json"
    done = _run(_torchrun(str(WORKER), "evaluate", str(run), str(out)))
    assert done.returncode == 0, done.stderr[-3000:]
    single = tmp_path / "single.json"
    subprocess.run(
        [sys.executable, str(WORKER), "evaluate", str(run), str(single)],
        env=_env(), check=True, timeout=300,
    )  # fmt: skip
    ddp_result, one = json.loads(out.read_text()), json.loads(single.read_text())
    assert ddp_result["shard_sizes"] != [one["num_images"]]  # really split between 2 ranks
    assert sum(ddp_result["shard_sizes"]) == one["num_images"]
    assert ddp_result["confusion_matrix"] == one["confusion_matrix"]
    for key in ("miou", "matching_ap50", "count_mae", "loss"):
        if key in one:
            assert ddp_result[key] == pytest.approx(one[key], abs=1e-12), key


def _wait_for(path: Path, text: str, proc: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the job ended ({proc.returncode}) before {text!r}")
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {path} after {seconds} s")


def _long_run(tmp_path: Path) -> tuple[Path, list[str]]:
    config = write_synthetic_semantic(tmp_path / "data", n_images=6, size=48, seed=4)
    settings = [
        *SETTINGS, "train.epochs=6", "train.batch_size=2", "train.samples_per_epoch=8",
        "train.checkpoint_every_s=0",
    ]  # fmt: skip
    return config, settings


@pytest.mark.slow
def test_a_killed_2_rank_run_resumes_and_completes(tmp_path: Path) -> None:
    config, settings = _long_run(tmp_path)
    run = tmp_path / "run"
    proc = _start(_torchrun(*_train_args(config, run, settings)))
    _wait_for(run / "metrics.jsonl", '"epoch": 2', proc, 240)
    os.killpg(proc.pid, signal.SIGKILL)  # every process of the job at once
    proc.wait(timeout=30)
    assert not (run / "summary.json").exists()
    done = _run(_torchrun(*_train_args(config, run, settings), "--resume"))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 6 and summary["steps"] == 6 * 2
    assert "resumed" in (run / "train.log").read_text()


@pytest.mark.slow
def test_killing_one_rank_ends_the_job_non_zero_within_60_s(tmp_path: Path) -> None:
    config, settings = _long_run(tmp_path)
    settings = [*settings, "train.epochs=10000"]
    run = tmp_path / "run"
    proc = _start(_torchrun(*_train_args(config, run, settings)))
    try:
        _wait_for(run / "metrics.jsonl", '"epoch": 1', proc, 240)
        ranks = subprocess.run(
            ["pgrep", "-f", "-P", str(proc.pid), "pixelseg"], capture_output=True, text=True
        ).stdout.split()
        assert len(ranks) == 2, ranks
        killed = time.monotonic()
        os.kill(int(ranks[-1]), signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert time.monotonic() - killed < 60
        assert "Signals.SIGKILL" in err or "SIGKILL" in err or "exitcode" in err, err[-2000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_predict_splits_a_folder_between_the_ranks_and_resumes(tmp_path: Path) -> None:
    config = write_synthetic_semantic(tmp_path / "data", n_images=7, size=48, seed=6)
    run = tmp_path / "run"
    settings = [*SETTINGS, "train.epochs=1", "train.batch_size=2", "train.samples_per_epoch=4"]
    train(load_config(config, settings), run)
    images, out = config.parent / "images", tmp_path / "pred"
    args = ["-m", "pixelseg", "predict", str(run), str(images), "--out", str(out)]
    done = _run(_torchrun(*args))
    assert done.returncode == 0, done.stderr[-3000:]
    said = sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))
    assert [line.split(" skipped")[0] for line in said] == [
        "rank 0: predicted 4 image(s),", "rank 1: predicted 3 image(s),"
    ]  # fmt: skip
    assert len(list(out.glob("*_label.png"))) == 7
    assert not list(out.glob(".manifest-rank*.json"))  # merged into manifest.json
    assert len(json.loads((out / "manifest.json").read_text())["outputs"]) == 7
    again = _run(
        [sys.executable, "-m", "pixelseg", "predict", str(run), str(images), "--out", str(out)]
    )
    assert "predicted 0 image(s), skipped 7 already done" in again.stdout
