"""Is bf16 autocast the fast path on this CPU? Training-step and matmul times, fp32 vs bf16.

Usage::

    python bench/precision_speed.py [--out bench/results/precision.json]

pixelseg's ``--precision auto`` picks bf16 on a CPU only with AMX (see
``pixelseg.engine.precision``); this script is the measurement behind that choice. Each row is the
best of a few timed steps after a warm-up, for pixelseg's default model (U-Net on resnet18, with
GroupNorm and with BatchNorm) and the smp peer, at batch 4 of 256² crops, one and two threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULTS_DIR, machine_info, write_result

OUT = RESULTS_DIR / "precision.json"


def _models() -> dict[str, Any]:
    from pixelseg.models.registry import create_model

    models: dict[str, Any] = {
        "pixelseg unet_resnet18 (GroupNorm)": lambda: create_model(
            "unet_resnet18", num_classes=2, in_channels=3, norm="group"
        ),
        "pixelseg unet_resnet18 (BatchNorm)": lambda: create_model(
            "unet_resnet18", num_classes=2, in_channels=3, norm="batch"
        ),
    }
    try:
        import segmentation_models_pytorch as smp

        models["smp Unet resnet34"] = lambda: smp.Unet(
            "resnet34", encoder_weights=None, in_channels=3, classes=2
        )
    except ImportError:
        pass
    return models


def step_seconds(build: Any, *, bf16: bool, steps: int = 3) -> float:
    """Best time of one AdamW training step (batch 4, 3×256², channels-last)."""
    model = build().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters())
    images = torch.randn(4, 3, 256, 256).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, 2, (4, 256, 256))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        loss = torch.nn.functional.cross_entropy(logits.float(), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def matmul_seconds(dtype: torch.dtype, size: int = 2048) -> float:
    """Best time of a ``size``² matrix product in ``dtype``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    times = []
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return min(times)


def measure() -> dict[str, Any]:
    """Every row, at one and two threads."""
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, build in _models().items():
            fp32, bf16 = step_seconds(build, bf16=False), step_seconds(build, bf16=True)
            rows.append({"what": f"train step, {name}", "threads": threads, "fp32_s": fp32,
                         "bf16_s": bf16})  # fmt: skip
        fp32, bf16 = matmul_seconds(torch.float32), matmul_seconds(torch.bfloat16)
        rows.append({"what": "2048² matmul", "threads": threads, "fp32_s": fp32, "bf16_s": bf16})
    from pixelseg.engine.precision import cpu_has_amx, cpu_has_native_bf16

    return {
        "machine": machine_info(),
        "native_bf16": cpu_has_native_bf16(),
        "amx": cpu_has_amx(),
        "rows": rows,
    }


def precision_section(results_dir: Path) -> list[str]:
    """The Markdown section for ``docs/benchmarks.md``: one table per ``precision*.json``.

    Each file is one CPU's measurement (``precision.json`` and, for example,
    ``precision_amx.json`` from a CPU with AMX); empty if none was measured.
    """
    paths = sorted(Path(results_dir).glob("precision*.json"))
    if not paths:
        return []
    out = [
        "## Precision: bf16 autocast vs fp32 on these CPUs",
        "",
        "Measured by `python bench/precision_speed.py`. `--precision auto` on a CPU picks bf16 "
        "only with AMX. Both sides of every benchmark use the same precision (fp32).",
        "",
    ]
    for path in paths:
        out += _precision_table(json.loads(path.read_text(encoding="utf-8")))
    return out


def _precision_table(data: dict[str, Any]) -> list[str]:
    """One CPU's rows, with whether ``auto``'s rule agrees with them."""
    steps = [r["bf16_s"] / r["fp32_s"] for r in data["rows"] if r["what"].startswith("train")]
    auto_bf16 = bool(data["amx"])
    faster = bool(steps) and min(steps) < 0.9
    if faster == auto_bf16:
        verdict = "which agrees with these numbers"
    elif faster:
        verdict = (
            f"which these numbers contradict: bf16 train steps took {min(steps):.2f}-"
            f"{max(steps):.2f}x the fp32 time here, so `auto` leaves speed unused on this CPU "
            "(speed only: bf16 training quality not measured)"
        )
    else:
        verdict = "although bf16 was not faster here"
    machine = data.get("machine", {})
    out = [
        f"{machine.get('lscpu_model', 'unknown CPU')} (commit "
        f"{str(machine.get('git_commit', '?'))[:7]}): native bf16 (oneDNN) {data['native_bf16']}, "
        f"AMX {data['amx']}; `auto` trains in {'bf16' if auto_bf16 else 'fp32'} here, {verdict}.",
        "",
        "| What | Threads | fp32 s | bf16 s | bf16 / fp32 |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        ratio = row["bf16_s"] / row["fp32_s"]
        out.append(
            f"| {row['what']} | {row['threads']} | {row['fp32_s']:.3f} | {row['bf16_s']:.3f} "
            f"| {ratio:.2f} |"
        )
    return [*out, ""]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    result = measure()
    write_result(args.out, result)
    for row in result["rows"]:
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
