"""The run directory: everything needed to evaluate and predict later.

Layout::

    RUN_DIR/config.json        the resolved config (data root absolute)
    RUN_DIR/run.json           task, class names, palette, ignore index, normalisation, model
                               config, the loss used and why, the training input
    RUN_DIR/checkpoints/last.safetensors   weights + optimizer + RNG + loop state (resume)
    RUN_DIR/checkpoints/best.safetensors   weights of the best validation epoch
    RUN_DIR/metrics.jsonl      one line per epoch
    RUN_DIR/train.log          the console log
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from pixelseg.config import Config, config_from_dict
from pixelseg.errors import CheckpointError, PixelsegError

LAST = "checkpoints/last.safetensors"
BEST = "checkpoints/best.safetensors"


@dataclass
class RunInfo:
    """What a trained model needs besides its weights (``run.json``).

    ``input`` describes the training images (dtype, bands, scaling, band statistics, nodata; see
    :class:`~pixelseg.data.input_spec.InputSpec`); it is empty for runs recorded before it was,
    whose images the Predictor then checks by band count only.
    """

    task: str
    class_names: list[str]
    palette: list[list[int]]
    ignore_index: int
    normalizer: dict[str, Any]
    model: dict[str, Any]
    in_channels: int
    loss: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    input: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing — is {path.parent} a pixelseg run directory?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupted JSON ({exc})") from exc


def read_run(run_dir: str | Path) -> tuple[Config, RunInfo]:
    """Read a run directory's config and info, with clear errors when it is not one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: run directory not found")
    raw_config = _read_json(run_dir / "config.json")
    raw_info = _read_json(run_dir / "run.json")
    try:
        config = config_from_dict(raw_config, source=str(run_dir / "config.json"))
        info = RunInfo(**raw_info)
    except (PixelsegError, TypeError) as exc:
        raise CheckpointError(f"{run_dir}: run files do not match this pixelseg: {exc}") from exc
    return config, info


def build_model_from_info(info: RunInfo) -> nn.Module:
    """Rebuild the (untrained) model a run describes, without downloading any weights."""
    from pixelseg.models.registry import create_model

    options = dict(info.model)
    name = options.pop("name")
    options.pop("weights", None)
    num_classes = options.pop("num_classes")
    in_channels = options.pop("in_channels", info.in_channels)
    return create_model(name, num_classes=num_classes, in_channels=in_channels, **options)


def load_model(run_dir: str | Path, *, checkpoint: str = "best") -> nn.Module:
    """The trained model of a run (``best`` or ``last`` checkpoint), in eval mode.

    Raises:
        CheckpointError: not a run directory, or a missing/corrupted/foreign checkpoint.
    """
    from pixelseg.engine.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    _, info = read_run(run_dir)
    model = build_model_from_info(info)
    load_checkpoint(checkpoint_path(run_dir, checkpoint), model)
    return model.eval()


def checkpoint_path(run_dir: str | Path, checkpoint: str = "best") -> Path:
    """The file that ``checkpoint`` (``best`` or ``last``) of ``run_dir`` loads: ``best``
    falls back to ``last`` when a run was killed before its first validation."""
    run_dir = Path(run_dir)
    path = run_dir / (BEST if checkpoint == "best" else LAST)
    if checkpoint == "best" and not path.is_file() and (run_dir / LAST).is_file():
        path = run_dir / LAST
    return path


def config_changes(
    stored: dict[str, Any], given: dict[str, Any], prefix: str = "", *, ignore: tuple[str, ...] = ()
) -> list[str]:
    """``key: stored -> given`` for every config key whose value differs (nested keys dotted),
    leaving out the top-level keys in ``ignore``."""
    changes = []
    for key in sorted((set(stored) | set(given)) - set(ignore)):
        old, new = stored.get(key), given.get(key)
        name = f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            changes += config_changes(old, new, f"{name}.")
        elif old != new:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return changes
