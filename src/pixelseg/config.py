"""Frozen configuration dataclasses and ``load_config`` (TOML or YAML).

A config file has the sections ``[data]`` (with ``[data.split]``), ``[model]``, ``[loss]`` and
``[train]``, plus a top-level ``task``. Unknown keys and wrong types are refused with a
:class:`~pixelseg.errors.ConfigError` naming the key. Paths in ``[data]`` are relative to the
config file; the environment variable ``PIXELSEG_DATA`` replaces the folder of the shipped
layout, so ``root = "../../shared/data/drive"`` becomes ``$PIXELSEG_DATA/drive`` (see
:func:`resolve_data_root`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelseg.config_parse import (
    apply_overrides,
    build_dataclass,
    parse_override,
    plain,
    read_raw_config,
    resolve_data_root,
)
from pixelseg.config_validate import validate_config
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
    colours listed in ``palette``. ``mask_threshold`` reads a two-class mask whose values form
    two clusters (soft or anti-aliased, 0 and 237 with shades between): a stored value ``>=`` it
    is the second class, below it the first (``mask_values`` optional; only ``void_values`` and
    NaN are void then). ``void_values`` (-1 allowed), a palette's ``void_colours`` (or one
    ``void_colour``) and the value ``ignore_index`` itself mark pixels never counted.
    ``valid_mask`` is a template of a per-image region mask (non-zero = valid); ``nodata`` an
    image value marking invalid pixels (``nan`` in TOML; NaN in a float image always is).
    ``skip_invalid``: a sample with an error is left out of every split (a warning names it).
    ``cache_fraction``: decoded images and masks stay in memory (as stored: uint8 / uint16 kept)
    up to this fraction of the machine's available RAM, so each file is decoded once (0: off).
    ``id_pattern`` is an optional regular expression searched in the image stem (with a ``/``:
    in the path under ``root``, suffix dropped); its group ``id``, or its groups joined by ``_``,
    become the sample id, ``{id}`` in the templates (DRIVE: ``"(\\d+)_training"``, ``masks =
    "1st_manual/{id}_manual1.gif"``); other named groups fill ``{name}`` (Dubai: ``'Tile
    (?P<tile>\\d+)/images/image_part_(?P<n>\\d+)'``, id ``"1_001"``, ``"Tile {tile}/masks/..."``).
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
    void_colours: tuple[tuple[int, int, int], ...] = ()
    mask_threshold: float | None = None
    ignore_index: int = 255
    valid_mask: str = ""
    nodata: float | None = None
    skip_invalid: bool = False
    max_pixels: int = 100_000_000
    normalize: str = "auto"
    cache_fraction: float = 0.25
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
    """Optimisation, sampling, precision, budget, validation and checkpointing.

    An epoch is ``samples_per_epoch`` random crops drawn with replacement from the training
    split (0 = auto: at least one pass over the split and at least 250 steps, nnU-Net's epoch);
    ``foreground_crops`` is the share of crops centred on a pixel of a rare class or an object
    (None = auto: 1/3, nnU-Net's oversampling, where the rarest class covers under 5 % of the
    training pixels, else 0). ``epochs`` caps the run; ``max_time`` (seconds, everything after
    start-up included) ends it wherever it is. ``precision = "auto"`` resolves to the measured
    fast path (see :func:`pixelseg.engine.precision.resolve_precision`).

    The learning rate warms up linearly over ``warmup_fraction`` of the run (or
    ``warmup_steps`` when set), then decays (``schedule``), both measured in steps of the planned
    run or, under ``max_time``, in the fraction of the budget spent, whichever is further.

    Validation (whole images, ``val_batch_size`` of one size at a time; 0 = auto: 1 on the
    CPU, 4 on CUDA): without a budget after every
    ``val_every`` epochs (or every ``val_every_steps`` steps); under ``max_time`` as often as
    ``val_share`` of the wall time allows, and after the last step. The best checkpoint follows
    ``early_stopping_metric`` (``auto``: the task's primary metric, ``miou``, ``mask_ap``...);
    ``patience`` counts validations without improvement (None = 10 without a budget, off under
    ``max_time``: the budget ends the run). The resumable ``last`` checkpoint is written every
    ``checkpoint_every_s`` seconds and at the end. Post-training work (threshold tuning) may take
    ``post_training_share`` of ``max_time``: training stops early enough to leave it.
    ``num_workers``: DataLoader worker processes (``"auto"`` chooses from the CPU count).
    ``tensorboard``: also write the logged curves as TensorBoard event files under
    ``RUN_DIR/tensorboard`` (needs the ``tensorboard`` package). Under ``torchrun``
    (docs/distributed.md) ``batch_size`` is per process: a step takes ``batch_size`` x processes
    x ``accumulate_steps`` crops; ``sync_batchnorm`` (CUDA only) converts BatchNorm layers, and a
    collective that waits over ``ddp_timeout_s`` (a rank that died or hangs) fails the job.
    """

    epochs: int = 20
    batch_size: int = 4
    crop_size: int = 256
    samples_per_epoch: int = 0
    foreground_crops: float | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "poly"
    warmup_steps: int = 0
    warmup_fraction: float = 0.03
    precision: str = "auto"
    channels_last: bool = True
    grad_clip: float = 1.0
    max_time: float | None = None
    seed: int = 0
    num_workers: int | str = "auto"
    early_stopping_metric: str = "auto"
    patience: int | None = None
    val_every: int = 1
    val_every_steps: int = 0
    val_share: float = 0.05
    val_batch_size: int = 0
    checkpoint_every_s: float = 300.0
    post_training_share: float = 0.1
    deterministic: bool = False
    augment: bool = True
    tensorboard: bool = False
    accumulate_steps: int = 1
    sync_batchnorm: bool = False
    ddp_timeout_s: float = 300.0


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
    markers, x ``keep_unseeded_values``: whether foreground without a marker becomes an object
    or is dropped as noise) and stored in the run directory.
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
    foreground_thresholds: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8)
    h_values: tuple[float, ...] = (0.1, 0.2, 0.3)
    keep_unseeded_values: tuple[bool, ...] = (True, False)


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


def config_from_dict(raw: dict[str, Any], *, source: str = "") -> Config:
    """Build and validate a :class:`Config` from a plain dict (as read from TOML/YAML/JSON)."""
    raw = {k: v for k, v in raw.items() if k != "source"}
    config = build_dataclass(Config, raw, "")
    config = dataclasses.replace(config, source=source)
    validate_config(config)
    return config


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a config file, apply ``--set`` overrides, resolve ``data.root`` to an absolute path.

    Raises:
        ConfigError: unreadable, or a key or value it refuses — the message names the file.
    """
    path = Path(path)
    raw = apply_overrides(read_raw_config(path), overrides or [])
    try:
        config = config_from_dict(raw, source=str(path))
    except ConfigError as exc:
        if str(path) in str(exc):
            raise
        raise ConfigError(f"{path}: {exc}") from exc
    root = resolve_data_root(config.data.root, path.resolve().parent)
    return dataclasses.replace(config, data=dataclasses.replace(config.data, root=str(root)))
