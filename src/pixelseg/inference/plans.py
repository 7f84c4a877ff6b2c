"""Which plan a Predictor runs (:mod:`pixelseg.inference.fast_path`): given, int8, or measured
once per machine and kept in the run directory.

With ``precision = "auto"`` the plan measured for this machine and checkpoint earlier is
reused (an int8 plan is calibrated again on the training images: the quantised model is not
stored), else the candidates are measured on the first image and the choice is kept in
``RUN/inference_plans.json``, keyed by device, CPU model, PyTorch version and checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixelseg.inference.fast_path import InferencePlan, measure_plan, prepare_model


def plan_key(predictor: Any) -> str:
    """What a kept plan of ``predictor`` depends on: :func:`machine_key` and its checkpoint
    file (other weights, as of a retrained run, are measured again)."""
    key = machine_key(predictor.device)
    if predictor.source is not None:
        stat = predictor.source[1].stat()
        key += f"; {predictor.source[1].name} {stat.st_size} {stat.st_mtime_ns}"
    return key


def choose_plan(predictor: Any, image: torch.Tensor) -> tuple[InferencePlan, nn.Module]:
    """The plan of ``predictor`` (precision ``auto`` or ``int8``) for its first normalised
    ``(C, H, W)`` ``image``, and the model laid out for it."""
    from pixelseg.inference.quantize import auto_int8, int8_plan

    if predictor.requested_precision == "int8":  # calibrated once, on training images
        return int8_plan(predictor.model, image, predictor=predictor)
    key, source = plan_key(predictor), predictor.source
    known = cached_plan(source[0], key) if source is not None else None
    if known is not None and known.precision != "int8":
        return known, prepare_model(predictor.model, known)
    if known is not None:
        quantized = auto_int8(predictor)
        if quantized is not None:
            return known, quantized
    plan, model = measure_plan(
        predictor.task,
        predictor.model,
        image,
        classes=len(predictor.info.class_names),
        device=predictor.device,
        int8=None if known is not None else lambda: auto_int8(predictor),  # kept int8: failed
    )
    if source is not None:
        save_plan(source[0], key, plan)
    return plan, model


#: Where a run directory keeps the plans measured for it, one per machine.
PLANS_FILE = "inference_plans.json"


def machine_key(device: torch.device) -> str:
    """What a measured plan depends on: the device (CPU model or GPU name) and PyTorch."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        name = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
    return f"{device.type}: {name}; torch {torch.__version__}"


def cached_plan(run_dir: Path, key: str) -> InferencePlan | None:
    """The plan measured for this machine earlier, or ``None``."""
    try:
        entry = json.loads((run_dir / PLANS_FILE).read_text(encoding="utf-8"))[key]
        return InferencePlan(
            str(entry["precision"]),
            bool(entry["channels_last"]),
            f"auto: as measured earlier on this machine ({entry['reason'].removeprefix('auto: ')})",
            bool(entry.get("folded", False)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save_plan(run_dir: Path, key: str, plan: InferencePlan) -> None:
    """Keep ``plan`` for this machine in the run directory (skipped where it cannot be written)."""
    from pixelseg.files import atomic_write_json

    path = run_dir / PLANS_FILE
    try:
        plans = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        plans = plans if isinstance(plans, dict) else {}
        plans[key] = dataclasses.asdict(plan)
        atomic_write_json(path, plans)
    except (OSError, ValueError):
        pass  # a read-only run directory: the plan is measured again next time
