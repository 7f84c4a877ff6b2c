"""Wiring a config into datasets: splits, cache, crop sampling, transforms, normalisation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pixelseg.config import Config, DataConfig
from pixelseg.data.cache import SampleCache
from pixelseg.data.check import plan_dataset
from pixelseg.data.check_report import raise_if_errors
from pixelseg.data.folder import MaskFolderDataset, SamplePaths, find_samples
from pixelseg.data.foreground import semantic_crop_sampling
from pixelseg.data.normalize import Normalizer, choose_normalizer, image_to_float
from pixelseg.data.plan import DataPlan, plan_splits
from pixelseg.data.splits import SPLITS, assign_splits
from pixelseg.data.transforms import build_transforms
from pixelseg.errors import ConfigError, DataError
from pixelseg.structures import Batch, SemanticSample


def _train_images(dataset: MaskFolderDataset) -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
    for index in range(len(dataset)):
        loaded = dataset.load(index)
        valid = None if loaded.nodata is None else ~loaded.nodata
        yield image_to_float(loaded.image), valid


def check_split_names(splits: Sequence[str]) -> None:
    """Refuse a split name other than train, val and test.

    Raises:
        ConfigError: naming the unknown split.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ConfigError(f"unknown split {unknown[0]!r}; choose from {', '.join(SPLITS)}")


def _plan(data: DataConfig, plan: DataPlan[SamplePaths] | None) -> DataPlan[SamplePaths]:
    """The check's plan when it read everything, else one listing and one image's header."""
    if plan is not None and plan.complete and plan.bands is not None:
        return plan
    samples = find_samples(data)
    members, bands, dtype = plan_splits(data, samples)
    return DataPlan(samples, members, bands=bands, dtype=dtype)


def crop_sampling_of(
    config: Config, train_set: MaskFolderDataset, counts: np.ndarray | None
) -> dict[str, Any]:
    """How the training crops are placed (see :mod:`pixelseg.data.foreground`).

    Decided from the training split's class pixels ``counts``, counted here (each mask decoded
    once, into the cache) when ``None`` and ``train.foreground_crops`` needs them.
    """
    setting = config.train.foreground_crops
    if counts is None and setting != 0:
        counts = class_pixel_counts(train_set)
    if counts is None:
        counts = np.zeros(train_set.num_classes, dtype=np.int64)
    return semantic_crop_sampling(setting, counts, list(train_set.classmap.classes))


def build_datasets(
    config: Config,
    splits: Sequence[str] = ("train", "val"),
    *,
    normalizer: Normalizer | None = None,
    verify: bool = True,
    crop_sampling: Mapping[str, Any] | None = None,
) -> dict[str, MaskFolderDataset]:
    """Build the semantic datasets of a config, one per requested split.

    The training split gets random crop-first augmentation (when ``train.augment``; see
    :mod:`pixelseg.data.transforms`), the others only padding to a multiple of 32.
    Normalisation statistics come from the training split (see :mod:`pixelseg.data.normalize`)
    unless ``normalizer`` is given (a trained run's own); the chosen normaliser is on every
    dataset as ``.normalizer``.

    The samples are listed once. With ``verify`` the check's single pass over the decoded
    samples (:func:`~pixelseg.data.check.plan_dataset`) also gives the band statistics and each
    split's class pixels (on every dataset as ``.class_counts``), and fills one
    :class:`~pixelseg.data.cache.SampleCache` (``data.cache_fraction`` of the available memory)
    that the datasets share, so no file is decoded again; without it ``.class_counts`` is
    ``None`` and samples are cached on first access. The training dataset's ``.crop_sampling``
    says how its crops are placed and why (``train.foreground_crops``).

    Args:
        config: a loaded config.
        splits: which of ``train``, ``val``, ``test`` to build.
        normalizer: reuse these statistics instead of computing them.
        verify: run :func:`~pixelseg.data.check.check_dataset` first and refuse a dataset with
            errors, so training never starts on bad labels. With ``data.skip_invalid`` the check
            runs either way and the datasets leave out the samples it skipped.
        crop_sampling: a recorded crop sampling (a run's own, so a resumed run crops as the
            original); decided from the training split's class pixels when ``None``.

    Raises:
        DataError: the dataset has errors (the first few listed) or a requested split is empty.
        ConfigError: an unknown split or a non-semantic ``data.format``.
    """
    data = config.data
    check_split_names(splits)
    if data.format != "mask_folder":
        raise ConfigError(f"data.format {data.format!r} is not a semantic mask-folder format")
    cache = SampleCache.from_fraction(data.cache_fraction)
    checked: DataPlan[SamplePaths] | None = None
    # Only the check knows which samples data.skip_invalid leaves out: run it even unasked.
    if verify or data.skip_invalid:
        report, checked = plan_dataset(config, cache=cache, cache_splits=splits)
        raise_if_errors(report, data.root)
    plan = _plan(data, checked)
    members, bands, dtype = plan.members, int(plan.bands or 0), str(plan.dtype)
    train_set = None
    if "train" in splits or normalizer is None:
        if not members["train"]:
            raise DataError(data.root, "split 'train' is empty: no normalisation statistics")
        train_set = MaskFolderDataset(data, ids=members["train"], samples=plan.samples, cache=cache)
    if normalizer is None:
        assert train_set is not None
        normalizer = choose_normalizer(
            data.normalize,
            bands=bands,
            dtype=dtype,
            train_images=_train_images(train_set),
            stats=plan.band_stats,
        )
    augment = "train" in splits and config.train.augment
    sampling: dict[str, Any] | None = None
    if augment and train_set is not None:
        sampling = dict(crop_sampling or {}) or crop_sampling_of(
            config, train_set, plan.class_counts.get("train")
        )
    rgb8 = bands == 3 and dtype == "uint8"
    datasets = {}
    for name in splits:
        if not members[name]:
            raise DataError(data.root, f"split {name!r} is empty (check [data.split])")
        train = name == "train" and augment
        transform = build_transforms(
            train=train,
            crop_size=config.train.crop_size,
            ignore_index=data.ignore_index,
            color_jitter=0.2 if rgb8 else 0.0,
            foreground_share=float(sampling["foreground_share"]) if train and sampling else 0.0,
            foreground_classes=sampling["class_indices"] if train and sampling else (),
        )
        datasets[name] = MaskFolderDataset(
            data,
            ids=members[name],
            transform=transform,
            normalizer=normalizer,
            samples=plan.samples,
            in_channels=bands,
            class_counts=plan.class_counts.get(name),
            cache=cache,
            crop_sampling=sampling if train else None,
        )
    return datasets


def class_pixel_counts(dataset_or_config: MaskFolderDataset | Config | DataConfig) -> np.ndarray:
    """Labelled pixels per class, void excluded: ``(num_classes,)`` int64.

    A dataset is counted over its own samples (no transforms); a config over its training split.
    Every mask is decoded: a dataset from :func:`build_datasets` with ``verify`` already holds
    these counts as ``.class_counts``.
    """
    if isinstance(dataset_or_config, MaskFolderDataset):
        dataset = dataset_or_config
    else:
        data = (
            dataset_or_config.data if isinstance(dataset_or_config, Config) else dataset_or_config
        )
        samples = find_samples(data)
        ids = assign_splits([s.id for s in samples], data.split)["train"]
        dataset = MaskFolderDataset(data, ids=ids, samples=samples)
    counts = np.zeros(dataset.num_classes, dtype=np.int64)
    for index in range(len(dataset)):
        counts += dataset.classmap.count(dataset.load(index).label)
    return counts


def collate_semantic(samples: Sequence[SemanticSample], ignore_index: int | None = None) -> Batch:
    """Stack samples into a :class:`~pixelseg.structures.Batch`.

    Samples of different sizes (evaluation on whole images) are padded bottom/right to the
    largest: images with 0, masks with ``ignore_index`` (from the samples' ``meta`` by default).

    Returns:
        A batch with ``images`` ``(N, C, H, W)`` float32 and ``masks`` ``(N, H, W)`` int64.
    """
    if not samples:
        raise ValueError("collate_semantic: no samples")
    if ignore_index is None:
        ignore_index = int(samples[0].meta.get("ignore_index", 255))
    height = max(s.image.shape[-2] for s in samples)
    width = max(s.image.shape[-1] for s in samples)
    images, masks = [], []
    for s in samples:
        pad = (0, width - s.image.shape[-1], 0, height - s.image.shape[-2])
        images.append(F.pad(s.image, pad, value=0.0))
        masks.append(F.pad(s.mask, pad, value=ignore_index))
    return Batch(images=torch.stack(images), masks=torch.stack(masks), ids=[s.id for s in samples])
