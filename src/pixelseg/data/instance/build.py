"""Wiring a config into instance datasets: splits, transforms, normalisation from train.

Mirrors :func:`pixelseg.data.build.build_datasets` for the instance formats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from pixelseg.config import Config
from pixelseg.data.build import check_split_names, plan_splits
from pixelseg.data.check_report import raise_if_errors
from pixelseg.data.instance.check import check_instances
from pixelseg.data.instance.dataset import InstanceDataset
from pixelseg.data.instance.formats import InstanceFiles
from pixelseg.data.instance.transforms import build_instance_transforms
from pixelseg.data.io import read_image
from pixelseg.data.normalize import Normalizer, choose_normalizer, image_to_float
from pixelseg.errors import DataError


def _train_images(
    samples: Sequence[InstanceFiles], max_pixels: int
) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
    # Only the images are needed for the statistics: masks are never read here.
    for files in samples:
        yield image_to_float(read_image(files.image, max_pixels=max_pixels)), None


def build_instance_datasets(
    config: Config,
    splits: Sequence[str] = ("train", "val"),
    *,
    normalizer: Normalizer | None = None,
    verify: bool = True,
) -> dict[str, InstanceDataset]:
    """Build the instance datasets of a config, one per requested split.

    The training split gets random crops of ``train.crop_size``, flips and 90° rotations (when
    ``train.augment``); every split is padded to a multiple of 32. Normalisation statistics come
    from the training split (see :mod:`pixelseg.data.normalize`) unless ``normalizer`` is given;
    the chosen normaliser is on every dataset as ``.normalizer``.

    Args:
        config: a loaded config with an instance ``data.format``.
        splits: which of ``train``, ``val``, ``test`` to build.
        normalizer: reuse these statistics instead of computing them.
        verify: run :func:`~pixelseg.data.instance.check.check_instances` first and refuse a
            dataset with errors, so training never starts on bad annotations.

    Raises:
        DataError: the dataset has errors (the first few listed) or a requested split is empty.
        ConfigError: an unknown split or a non-instance ``data.format``.
    """
    data = config.data
    check_split_names(splits)
    if verify:
        raise_if_errors(check_instances(config), data.root)
    everything = InstanceDataset(data)
    members, bands, dtype = plan_splits(data, everything.samples)
    if normalizer is None:
        by_id = {s.id: s for s in everything.samples}
        train_files = [by_id[i] for i in members["train"]]
        if not train_files:
            raise DataError(data.root, "split 'train' is empty: no normalisation statistics")
        normalizer = choose_normalizer(
            data.normalize,
            bands=bands,
            dtype=dtype,
            train_images=_train_images(train_files, data.max_pixels),
        )
    rgb8 = bands == 3 and dtype == "uint8"
    datasets = {}
    for name in splits:
        if not members[name]:
            raise DataError(data.root, f"split {name!r} is empty (check [data.split])")
        transform = build_instance_transforms(
            train=name == "train" and config.train.augment,
            crop_size=config.train.crop_size,
            color_jitter=0.2 if rgb8 else 0.0,
        )
        datasets[name] = InstanceDataset(
            data, ids=members[name], transform=transform, normalizer=normalizer
        )
    return datasets
