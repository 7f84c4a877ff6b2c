"""Wiring a config into instance datasets: splits, cache, crop sampling, transforms, statistics.

Mirrors :func:`pixelseg.data.build.build_datasets` for the instance formats.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pixelseg.config import Config
from pixelseg.data.build import check_split_names
from pixelseg.data.cache import SampleCache
from pixelseg.data.check_report import raise_if_errors
from pixelseg.data.foreground import instance_crop_sampling
from pixelseg.data.instance.check import InstancePlan, plan_instances
from pixelseg.data.instance.dataset import InstanceDataset
from pixelseg.data.instance.formats import InstanceFiles, InstanceSource
from pixelseg.data.instance.transforms import build_instance_transforms
from pixelseg.data.io import read_image
from pixelseg.data.normalize import Normalizer, choose_normalizer, image_to_float
from pixelseg.data.plan import plan_splits
from pixelseg.errors import DataError


def _train_images(
    samples: Sequence[InstanceFiles], max_pixels: int
) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
    # Only the images are needed for the statistics: masks are never read here.
    for files in samples:
        yield image_to_float(read_image(files.image, max_pixels=max_pixels)), None


def _plan(
    config: Config, verify: bool, cache: SampleCache | None, splits: Sequence[str]
) -> InstancePlan:
    """The check's plan (``verify``: errors refused) when it read everything, else one listing."""
    data = config.data
    if verify:
        report, plan = plan_instances(config, cache=cache, cache_splits=splits)
        raise_if_errors(report, data.root)
        if plan.complete and plan.bands is not None and plan.source is not None:
            return plan
    source = InstanceSource(data)
    members, bands, dtype = plan_splits(data, source.samples)
    return InstancePlan(source.samples, members, bands=bands, dtype=dtype, source=source)


def _crop_sampling(
    config: Config, plan: InstancePlan, train_set: InstanceDataset
) -> dict[str, Any]:
    """The training crops' sampling, from the check's object and image pixels (measured here,
    each training sample decoded once into the cache, when the check did not run)."""
    setting = config.train.foreground_crops
    objects, total = 0, plan.train_pixels
    if plan.object_areas and total:
        objects = int(sum(int(a.sum()) for a in plan.object_areas.values()))
    elif setting is None:
        for index in range(len(train_set)):
            label_image = train_set.compact(index).label_image
            objects += int(np.count_nonzero(label_image))
            total += int(label_image.size)
    return instance_crop_sampling(setting, objects, total, list(train_set.classes))


def build_instance_datasets(
    config: Config,
    splits: Sequence[str] = ("train", "val"),
    *,
    normalizer: Normalizer | None = None,
    verify: bool = True,
    crop_sampling: Mapping[str, Any] | None = None,
) -> dict[str, InstanceDataset]:
    """Build the instance datasets of a config, one per requested split.

    The training split gets random crops of ``train.crop_size``, flips and 90° rotations (when
    ``train.augment``); every split is padded to a multiple of 32. Normalisation statistics come
    from the training split (see :mod:`pixelseg.data.normalize`) unless ``normalizer`` is given;
    the chosen normaliser is on every dataset as ``.normalizer``.

    The samples are listed once. With ``verify`` the check's single pass over the decoded
    samples (:func:`~pixelseg.data.instance.check.plan_instances`) also gives the band
    statistics and the training objects' areas (on the train dataset as ``.object_areas``, for
    the anchor sizes), and fills one :class:`~pixelseg.data.cache.SampleCache` shared by the
    datasets, so no file is decoded again; without it samples are cached on first access. The
    training dataset's ``.crop_sampling`` says how its crops are placed and why.

    Args:
        config: a loaded config with an instance ``data.format``.
        splits: which of ``train``, ``val``, ``test`` to build.
        normalizer: reuse these statistics instead of computing them.
        verify: run :func:`~pixelseg.data.instance.check.check_instances` first and refuse a
            dataset with errors, so training never starts on bad annotations.
        crop_sampling: a recorded crop sampling (a run's own, so a resumed run crops as the
            original); decided from the training split when ``None``.

    Raises:
        DataError: the dataset has errors (the first few listed) or a requested split is empty.
        ConfigError: an unknown split or a non-instance ``data.format``.
    """
    data = config.data
    check_split_names(splits)
    cache = SampleCache.from_fraction(data.cache_fraction)
    plan = _plan(config, verify, cache, splits)
    members, bands, dtype = plan.members, int(plan.bands or 0), str(plan.dtype)
    if normalizer is None:
        by_id = {s.id: s for s in plan.samples}
        train_files = [by_id[i] for i in members["train"]]
        if not train_files:
            raise DataError(data.root, "split 'train' is empty: no normalisation statistics")
        normalizer = choose_normalizer(
            data.normalize,
            bands=bands,
            dtype=dtype,
            train_images=_train_images(train_files, data.max_pixels),
            stats=plan.band_stats,
        )
    rgb8 = bands == 3 and dtype == "uint8"
    datasets = {}
    for name in splits:
        if not members[name]:
            raise DataError(data.root, f"split {name!r} is empty (check [data.split])")
        datasets[name] = InstanceDataset(
            data,
            ids=members[name],
            normalizer=normalizer,
            source=plan.source,
            in_channels=bands,
            object_areas=plan.object_areas if name == "train" and plan.object_areas else None,
            cache=cache,
        )
        train = name == "train" and config.train.augment
        sampling: dict[str, Any] | None = None
        if train:
            sampling = dict(crop_sampling or {}) or _crop_sampling(config, plan, datasets[name])
            datasets[name].crop_sampling = sampling
        share = sampling["foreground_share"] if sampling else 0.0
        datasets[name].transform = build_instance_transforms(
            train=train,
            crop_size=config.train.crop_size,
            color_jitter=0.2 if rgb8 else 0.0,
            foreground_share=float(share),
        )
    return datasets
