"""Checks of a whole config beyond its types: allowed values, consistency, fractions."""

from __future__ import annotations

from typing import Any

from pixelseg.errors import ConfigError

TASKS = ("semantic", "instance", "watershed")
DATA_FORMATS = ("mask_folder", "kaggle_instances", "instance_labels", "coco")
SPLIT_METHODS = ("range", "list", "prefix", "hash", "all")


def validate_config(config: Any) -> None:
    """Refuse choices outside their allowed values and inconsistent settings, naming the key.

    ``config`` is a :class:`pixelseg.config.Config` (typed loosely: that module imports this
    one).

    Raises:
        ConfigError: the first problem found.
    """
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
    train = config.train
    if isinstance(train.num_workers, str) and train.num_workers != "auto":
        raise ConfigError(f"train.num_workers: {train.num_workers!r} is not a number or 'auto'")
    if train.accumulate_steps < 1:
        raise ConfigError(f"train.accumulate_steps: {train.accumulate_steps} is not 1 or more")
    fractions: tuple[tuple[str, float], ...] = (
        ("train.val_share", train.val_share),
        ("train.post_training_share", train.post_training_share),
        ("train.warmup_fraction", train.warmup_fraction),
        ("train.foreground_crops", train.foreground_crops or 0.0),
        ("data.cache_fraction", config.data.cache_fraction),
    )
    for name, fraction in fractions:
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(f"{name}: {fraction} is not a fraction between 0 and 1")
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
    _validate_mask_encoding(config.data)


def _validate_mask_encoding(data: Any) -> None:
    """``mask_threshold`` (binary masks only) and the void colours."""
    colours = ((data.void_colour,) if data.void_colour else ()) + tuple(data.void_colours)
    for colour in colours:
        if len(colour) < 3 or not all(0 <= c <= 255 for c in colour):
            raise ConfigError(f"data.void_colours: {list(colour)} is not an RGB colour (0-255)")
    threshold = data.mask_threshold
    if threshold is None:
        return
    if len(data.classes) != 2 or data.palette:
        raise ConfigError(
            "data.mask_threshold: only for binary masks (two classes, no palette); "
            f"got {len(data.classes)} classes"
        )
    if data.mask_values and not data.mask_values[0] < threshold <= data.mask_values[1]:
        raise ConfigError(
            f"data.mask_threshold = {threshold:g} does not lie between "
            f"data.mask_values {list(data.mask_values)} (first < threshold <= second)"
        )
