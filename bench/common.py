"""What every benchmark result records: the machine, the versions, and a training-speed probe.

Results are JSON files written atomically (a killed ``make bench`` never leaves half a file
that a resumed run would skip). The probe times a few optimizer steps on a synthetic batch of the
config's batch and crop size, before a run, so each run can say up front how many images its
budget will show; the run's JSON then records what it really did.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixelseg.config import Config
from pixelseg.engine.precision import (
    autocast_factory,
    cpu_has_native_bf16,
    resolve_device,
    resolve_precision,
)
from pixelseg.files import atomic_write_json

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
RESULTS_DIR = REPO_ROOT / "bench" / "results"
DATASETS = ("isbi2012", "drive", "camvid")
PEER_MODEL = "smp_unet_resnet34"
PLAIN_MODEL = "plain_smp_unet_resnet34"

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cpu_model() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def lscpu() -> dict[str, str]:
    """``lscpu``'s fields (``Model name``, ``Flags``, ``Socket(s)``...); ``{}`` if absent."""
    try:
        text = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True, env={**os.environ, "LC_ALL": "C"}
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def cpu_flags(fields: dict[str, str] | None = None) -> list[str]:
    """The CPU's feature flags (``lscpu``, else ``/proc/cpuinfo``), e.g. ``avx512_bf16``."""
    fields = lscpu() if fields is None else fields
    if fields.get("Flags"):
        return fields["Flags"].split()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def git_commit() -> str:
    """``HEAD``'s commit hash, with ``+dirty`` when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def smp_version() -> str | None:
    """The installed ``segmentation_models_pytorch`` version, or ``None``."""
    try:
        import segmentation_models_pytorch as smp
    except ImportError:
        return None
    return str(smp.__version__)


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or ``None``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, core and thread counts, bf16 support, and the versions that shape the numbers."""
    import torchvision

    import pixelseg

    fields = lscpu()
    commit = git_commit()
    return {
        "cpu": cpu_model(),
        "lscpu_model": fields.get("Model name"),
        "cpu_flags": cpu_flags(fields),
        "threads_per_core": fields.get("Thread(s) per core"),
        "sockets": fields.get("Socket(s)"),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            "pixelseg": pixelseg.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "segmentation_models_pytorch": smp_version(),
            "cellpose": package_version("cellpose"),
        },
        "git_commit": commit,
        "git_dirty": commit.endswith("+dirty"),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_fields(
    summary: dict[str, Any], metrics: dict[str, Any], speed: dict[str, Any], *, started: float
) -> dict[str, Any]:
    """The fields every trained row records: probe, what the run did, metrics and machine.

    Args:
        summary: the run's ``steps``, ``epochs``, ``images_seen``, ``train_seconds``,
            ``best_epoch``, ``precision`` and ``device``; ``startup_seconds`` and
            ``time_breakdown`` (``wall_seconds``, ``seconds`` and ``fractions`` per category, as
            pixelseg's ``summary.json`` holds them) when the run recorded them.
        metrics: the evaluation (with ``images_per_second``).
        speed: the probe's result.
        started: ``time.perf_counter()`` when the row began (for ``wall_seconds``).
    """
    seconds = float(summary["train_seconds"]) or 1e-9
    return {
        "probe": speed,
        "steps": int(summary["steps"]),
        "epochs": summary["epochs"],
        "images_seen": int(summary["images_seen"]),
        "crops_seen": int(summary["images_seen"]),
        "train_seconds": seconds,
        "startup_seconds": summary.get("startup_seconds"),
        "time_breakdown": summary.get("time_breakdown"),
        "steps_per_second": summary["steps"] / seconds,
        "train_images_per_second": summary["images_seen"] / seconds,
        "eval_images_per_second": metrics["images_per_second"],
        "best_epoch": summary["best_epoch"],
        "precision": summary["precision"],
        "device": summary["device"],
        "metrics": metrics,
        "wall_seconds": time.perf_counter() - started,
        "machine": machine_info(),
    }


def instance_splits(config: Config, splits: Sequence[str]) -> dict[str, Any]:
    """One raw ``InstanceDataset`` per split (no transform or normalisation), from one listing."""
    from pixelseg.data.build import plan_splits
    from pixelseg.data.instance.dataset import InstanceDataset

    everything = InstanceDataset(config.data)
    members, _, _ = plan_splits(config.data, everything.samples)
    return {name: InstanceDataset(config.data, ids=members[name]) for name in splits}


def write_result(path: str | Path, result: dict[str, Any]) -> Path:
    """Write a result JSON atomically (NaN becomes ``null``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, result)


def probe_train_speed(
    model: nn.Module,
    loss_fn: LossFn,
    config: Config,
    *,
    in_channels: int,
    num_classes: int,
    steps: int = 3,
    device: str = "auto",
) -> dict[str, float]:
    """Time ``steps`` optimizer steps (after two untimed warm-ups) as the run will take them.

    Same batch and crop size, precision, channels-last, AdamW and gradient clipping as the run;
    the batch is synthetic (random images and labels), since speed does not depend on content.
    The model is trained by the probe: pass a throw-away instance.

    Returns:
        ``steps_per_second``, ``images_per_second``, ``seconds_per_step`` and ``steps`` (timed).
    """
    train = config.train
    dev = resolve_device(device)
    autocast = autocast_factory(resolve_precision(train.precision, dev), dev)
    model.to(dev).train()
    generator = torch.Generator().manual_seed(0)
    shape = (train.batch_size, in_channels, train.crop_size, train.crop_size)
    images = torch.randn(shape, generator=generator).to(dev)
    masks = torch.randint(0, num_classes, (shape[0], *shape[2:]), generator=generator).to(dev)
    if train.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)

    def step() -> None:
        with autocast():
            logits = model(images)
        loss = loss_fn(logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()

    return time_steps(step, steps=steps, batch_size=train.batch_size)


def time_steps(step: Callable[[], None], *, steps: int, batch_size: int) -> dict[str, float]:
    """Time ``steps`` calls of ``step`` after two untimed warm-up calls.

    Two, since the second step in a process was still slower than the ones after it (oneDNN
    primitive creation and allocator growth spill over the first).

    Returns:
        ``steps_per_second``, ``images_per_second``, ``seconds_per_step`` and ``steps`` (timed).
    """
    for _ in range(2):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {
        "steps": steps,
        "seconds_per_step": seconds,
        "steps_per_second": 1.0 / seconds,
        "images_per_second": batch_size / seconds,
    }
