"""Checkpoints as safetensors plus JSON — never pickles, so loading one never runs code.

A checkpoint is a single ``.safetensors`` file: tensors under ``model/``, ``optim/`` and ``rng/``,
and everything else (step, epoch, optimizer hyper-parameters, Python/NumPy RNG states, data-order
position) as JSON in the safetensors header's metadata. One file means one atomic rename.
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from pixelseg.errors import CheckpointError
from pixelseg.files import atomic_write


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, per_param in state["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split("/", 2)
        state.setdefault(int(index), {})[key] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The torch (CPU and CUDA), NumPy and Python RNG states, as tensors and JSON."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda{i}"] = s
    np_state: tuple[Any, ...] = tuple(np.random.get_state())
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Restore the states saved by :func:`capture_rng`."""
    torch.set_rng_state(tensors["rng/torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng/cuda"))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    kind, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = meta["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    state: dict[str, Any] | None = None,
    with_rng: bool = False,
    scaler: torch.amp.GradScaler | None = None,
) -> Path:
    """Write model weights (and optionally optimizer, RNG and loop state) atomically.

    Args:
        path: destination ``.safetensors`` file.
        model: the model (unwrapped from DDP).
        optimizer: included for resumable checkpoints.
        state: JSON-serialisable loop state (epoch, step, best metric, data position...).
        with_rng: include RNG states so a resumed run draws the same numbers.
        scaler: fp16's gradient scaler, whose scale and growth counter a resumed run continues.
    """
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"format": "pixelseg-checkpoint-1", "state": state or {}}
    if optimizer is not None:
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        tensors.update({k: v.detach().cpu().contiguous() for k, v in opt_tensors.items()})
        meta["optimizer"] = opt_meta
    if scaler is not None and scaler.is_enabled():
        meta["grad_scaler"] = dict(scaler.state_dict())
    if with_rng:
        rng_tensors, rng_meta = capture_rng()
        tensors.update(rng_tensors)
        meta["rng"] = rng_meta
    header = {"pixelseg": json.dumps(meta)}

    def write(tmp: Path) -> None:
        try:
            save_file(tensors, str(tmp), metadata=header)
        except OSError:
            raise
        except Exception as exc:  # safetensors reports I/O failures as its own error type
            # e.g. "I/O error: No space left on device (os error 28)"
            code = re.search(r"\(os error (\d+)\)", str(exc))
            if code is None:
                raise
            number = int(code.group(1))
            raise OSError(number, os.strerror(number), str(path)) from exc

    return atomic_write(path, write)


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint's tensors and metadata; refuse anything that is not one of ours.

    Raises:
        CheckpointError: missing file, not safetensors (e.g. a pickle), or foreign metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(
            f"{path}: not a valid safetensors checkpoint ({type(exc).__name__}: {exc}); "
            "pixelseg never loads pickles"
        ) from exc
    if "pixelseg" not in metadata:
        raise CheckpointError(f"{path}: safetensors file without pixelseg metadata")
    try:
        meta = json.loads(metadata["pixelseg"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupted checkpoint metadata ({exc})") from exc
    return tensors, meta


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    restore_rng_state: bool = False,
    scaler: torch.amp.GradScaler | None = None,
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (and ``optimizer``, ``scaler``); return the loop state.

    A ``scaler`` is restored when the checkpoint holds its state (one saved in fp16).
    """
    tensors, meta = read_checkpoint(path)
    weights = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit this model: {exc}") from exc
    if optimizer is not None:
        if "optimizer" not in meta:
            raise CheckpointError(f"{path}: no optimizer state (not a resumable checkpoint)")
        opt = {k: v for k, v in tensors.items() if k.startswith("optim/")}
        optimizer.load_state_dict(_unflatten_optimizer(opt, meta["optimizer"]))
    if restore_rng_state:
        if "rng" not in meta:
            raise CheckpointError(f"{path}: no RNG state saved")
        restore_rng({k: v for k, v in tensors.items() if k.startswith("rng/")}, meta["rng"])
    if scaler is not None and "grad_scaler" in meta:
        scaler.load_state_dict(meta["grad_scaler"])
    return dict(meta.get("state", {}))
