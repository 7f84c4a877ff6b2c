"""Frozen configuration dataclasses and ``load_config`` (TOML or YAML).

A config file has the sections ``[data]`` (with ``[data.split]``), ``[model]``, ``[loss]`` and
``[train]``, plus a top-level ``task``. Unknown keys and wrong types are refused with a
:class:`~pixelseg.errors.ConfigError` naming the key. Paths in ``[data]`` are relative to the
config file; the environment variable ``PIXELSEG_DATA`` replaces the folder that holds the
dataset (``root``'s parent), so ``root = "../../shared/data/drive"`` becomes
``$PIXELSEG_DATA/drive``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelseg.config_parse import (
    apply_overrides,
    build_dataclass,
    parse_override,
    plain,
    read_raw_config,
)
from pixelseg.errors import ConfigError

__all__ = [
    "Config",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "SplitConfig",
    "TrainConfig",
    "WatershedConfig",
    "apply_overrides",
    "config_from_dict",
    "load_config",
    "parse_override",
    "read_raw_config",
    "resolve_data_root",
]

TASKS = ("semantic", "instance", "watershed")
DATA_FORMATS = ("mask_folder", "kaggle_instances", "instance_labels", "coco")
SPLIT_METHODS = ("range", "list", "prefix", "hash", "all")


@dataclass(frozen=True)
class SplitConfig:
    """How samples are divided into train / val / test.

    ``method``:
      * ``"range"``: ``train = ["0-19"]``: the integer at the start of each id within a range;
      * ``"list"``: explicit ids;
      * ``"prefix"``: ids starting with one of the prefixes;
      * ``"hash"``: a stable hash of the id, with ``fractions`` for (train, val, test);
      * ``"all"``: every sample in train (and val, for a quick check).
    For ``range``/``list``/``prefix`` one split may be ``["*"]``: everything not in another.
    """

    method: str = "hash"
    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    fractions: tuple[float, ...] = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how to read it.

    ``images`` is a glob relative to ``root``; ``masks`` a template with ``{stem}`` (the image file
    name without suffix), or use ``pairs_file`` (lines ``image mask``, CamVid's ``train.txt``).
    Masks hold class indices (default), values listed in ``mask_values`` (one per class), or RGB
    colours listed in ``palette``. ``void_values`` / a palette's ``void_colour`` and the value
    ``ignore_index`` itself mark pixels never counted. ``valid_mask`` is a template of a per-image
    region mask (non-zero = valid); ``nodata`` a TIFF value marking invalid pixels.
    ``id_pattern`` is an optional regular expression matched against the image stem whose first
    group (or group ``id``) becomes the sample id and fills ``{id}`` in the templates (DRIVE:
    ``"(\\d+)_training"`` so that ``masks = "1st_manual/{id}_manual1.gif"``).
    Instance formats (``kaggle_instances``, ``instance_labels``, ``coco``; see
    :mod:`pixelseg.data.instance.formats`): ``annotations`` is the COCO JSON file and
    ``object_classes`` an optional template of a JSON file mapping each object to its class.
    Objects overlapping by at most ``max_overlap`` of the smaller one's area keep the pixels
    with the earlier object (a warning); larger overlaps are errors.
    """

    format: str = "mask_folder"
    root: str = "."
    images: str = "images/*.png"
    masks: str = "masks/{stem}.png"
    pairs_file: str = ""
    id_pattern: str = ""
    annotations: str = ""
    object_classes: str = ""
    max_overlap: float = 0.05
    classes: tuple[str, ...] = ()
    mask_values: tuple[int, ...] = ()
    palette: tuple[tuple[int, int, int], ...] = ()
    void_values: tuple[int, ...] = ()
    void_colour: tuple[int, ...] = ()
    ignore_index: int = 255
    valid_mask: str = ""
    nodata: float | None = None
    max_pixels: int = 100_000_000
    normalize: str = "auto"
    split: SplitConfig = field(default_factory=SplitConfig)

    @property
    def num_classes(self) -> int:
        """Number of real classes (void excluded)."""
        return len(self.classes)


@dataclass(frozen=True)
class ModelConfig:
    """Which registered model to build, with its keyword options."""

    name: str = "unet_resnet18"
    weights: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LossConfig:
    """Loss choice. ``name="auto"`` follows ``pixelseg check``'s imbalance diagnosis."""

    name: str = "auto"
    class_weighting: str = "auto"
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    focal_gamma: float = 2.0
    focal_weight: float = 1.0
    smooth: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, precision, budget and checkpointing.

    ``precision = "auto"`` resolves to the measured fast path (see
    :func:`pixelseg.engine.precision.resolve_precision`). ``max_time`` (seconds, validation
    included) ends training wherever it is. Validation runs every ``val_every`` epochs and after
    the last; ``early_stopping_metric = "auto"`` follows the task's primary metric (``miou``,
    ``mask_ap``...), and ``patience`` counts validations without improvement. A resumable
    checkpoint is written at every epoch end and every ``checkpoint_every_s`` seconds.
    """

    epochs: int = 20
    batch_size: int = 4
    crop_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "poly"
    warmup_steps: int = 50
    precision: str = "auto"
    channels_last: bool = True
    grad_clip: float = 1.0
    max_time: float | None = None
    seed: int = 0
    num_workers: int = 0
    early_stopping_metric: str = "auto"
    patience: int = 10
    checkpoint_every_s: float = 600.0
    deterministic: bool = False
    augment: bool = True
    val_every: int = 1


@dataclass(frozen=True)
class WatershedConfig:
    """The semantic → instance task (``task = "watershed"``): targets, loss extras, splitting.

    ``targets``: ``"three_class"`` (background / interior / boundary ``boundary_width`` px wide,
    with the U-Net border weight map of ``w0`` and ``sigma`` px as per-pixel loss weights) or
    ``"two_class"`` (background / object, unweighted: the naive baseline). ``postprocess``:
    ``"watershed"`` (markers from the interior probability or, with ``distance_head``, from
    h-maxima of the predicted distance) or ``"connected_components"`` (every blob one object).
    ``distance_head`` adds one output channel regressing the per-object normalised distance to
    the boundary (``distance_loss`` ``"l1"`` or ``"mse"``, weighted by ``distance_weight``).
    With ``tune`` the thresholds are chosen on the val split after training from the grid
    (``interior_thresholds`` x ``foreground_thresholds``, or ``h_values`` for distance
    markers) and stored in the run directory.
    """

    targets: str = "three_class"
    postprocess: str = "watershed"
    boundary_width: int = 2
    w0: float = 10.0
    sigma: float = 5.0
    distance_head: bool = False
    distance_loss: str = "l1"
    distance_weight: float = 1.0
    markers: str = "interior"
    min_size: int = 10
    fill_holes: bool = True
    tune: bool = True
    interior_thresholds: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)
    foreground_thresholds: tuple[float, ...] = (0.4, 0.5, 0.6)
    h_values: tuple[float, ...] = (0.1, 0.2, 0.3)


@dataclass(frozen=True)
class Config:
    """A whole job: task, data, model, loss and training settings."""

    task: str = "semantic"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    watershed: WatershedConfig = field(default_factory=WatershedConfig)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-friendly dict (tuples become lists) that :func:`config_from_dict` reads."""
        return plain(dataclasses.asdict(self))


def _validate(config: Config) -> None:
    choices = {
        "task": (config.task, TASKS),
        "data.format": (config.data.format, DATA_FORMATS),
        "data.split.method": (config.data.split.method, SPLIT_METHODS),
        "train.precision": (config.train.precision, ("auto", "fp32", "bf16", "fp16")),
        "train.schedule": (config.train.schedule, ("poly", "cosine", "constant")),
        "loss.name": (config.loss.name, ("auto", "ce", "dice", "focal", "dice_ce", "focal_dice")),
        "loss.class_weighting": (
            config.loss.class_weighting,
            ("auto", "none", "inverse", "median"),
        ),
    }
    ws = config.watershed
    choices["watershed.targets"] = (ws.targets, ("three_class", "two_class"))
    choices["watershed.postprocess"] = (ws.postprocess, ("watershed", "connected_components"))
    choices["watershed.markers"] = (ws.markers, ("interior", "distance"))
    choices["watershed.distance_loss"] = (ws.distance_loss, ("l1", "mse"))
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    if ws.postprocess == "watershed" and ws.targets != "three_class":
        raise ConfigError("watershed.postprocess: 'watershed' needs targets = 'three_class'")
    if ws.markers == "distance" and not ws.distance_head:
        raise ConfigError("watershed.markers: 'distance' needs distance_head = true")
    if config.data.mask_values and len(config.data.mask_values) != len(config.data.classes):
        raise ConfigError(
            f"data.mask_values: {len(config.data.mask_values)} values for "
            f"{len(config.data.classes)} classes"
        )
    if config.data.palette and len(config.data.palette) != len(config.data.classes):
        raise ConfigError(
            f"data.palette: {len(config.data.palette)} colours for "
            f"{len(config.data.classes)} classes"
        )


def config_from_dict(raw: dict[str, Any], *, source: str = "") -> Config:
    """Build and validate a :class:`Config` from a plain dict (as read from TOML/YAML/JSON)."""
    raw = {k: v for k, v in raw.items() if k != "source"}
    config = build_dataclass(Config, raw, "")
    config = dataclasses.replace(config, source=source)
    _validate(config)
    return config


def resolve_data_root(root: str, config_dir: Path) -> Path:
    """Resolve ``data.root`` relative to the config file, honouring ``PIXELSEG_DATA``."""
    override = os.environ.get("PIXELSEG_DATA")
    if override:
        return Path(override) / Path(root).name
    path = Path(root)
    return path if path.is_absolute() else (config_dir / path).resolve()


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a config file, apply ``--set`` overrides, resolve ``data.root`` to an absolute path."""
    path = Path(path)
    raw = apply_overrides(read_raw_config(path), overrides or [])
    config = config_from_dict(raw, source=str(path))
    root = resolve_data_root(config.data.root, path.resolve().parent)
    return dataclasses.replace(config, data=dataclasses.replace(config.data, root=str(root)))
