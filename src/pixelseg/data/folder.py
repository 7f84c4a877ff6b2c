"""Mask-folder datasets: images paired with masks by file stem or by a pairs list file.

Pairing by stem: ``images`` is a glob under ``root`` and ``masks`` (and ``valid_mask``) templates
with ``{stem}`` (the image name without suffix), ``{id}`` (the sample id: the stem, or what
``id_pattern`` matched) and ``id_pattern``'s other named groups (Dubai's ``{tile}`` from the
folder ``Tile 1/images``). Pairing by list: ``pairs_file`` lines ``image mask`` (CamVid's
``train.txt``); paths written for another machine (``/SegNet/CamVid/train/x.png``) are resolved by
their last two components under ``root`` when the literal path does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pixelseg.config import DataConfig
from pixelseg.data.cache import SampleCache
from pixelseg.data.classmap import ClassMap
from pixelseg.data.compact import CompactSample, pack_sample
from pixelseg.data.loading import LoadedSample, SamplePaths, load_sample, size_mismatch
from pixelseg.data.normalize import Normalizer, image_to_float
from pixelseg.data.plan import first_image_bands
from pixelseg.data.transforms import ArrayTransform
from pixelseg.errors import ConfigError, DataError
from pixelseg.structures import SemanticSample

__all__ = [
    "LoadedSample",
    "MaskFolderDataset",
    "SamplePaths",
    "fill_template",
    "find_samples",
    "id_from_stem",
    "load_sample",
    "sample_key",
    "size_mismatch",
]

Transform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def sample_key(paths: SamplePaths) -> tuple[str, str, str]:
    """The key of a sample in a :class:`~pixelseg.data.cache.SampleCache`."""
    return (paths.id, str(paths.image), str(paths.mask))


def _natural_key(path: Path) -> tuple[list[Any], int, str]:
    """Folder by folder in natural order (``Tile 2`` before ``Tile 10``), then by number."""
    folder = [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path.parent))]
    match = re.match(r"\d+", path.stem)
    return (folder, int(match.group()) if match else -1, path.name)


def _resolve(root: Path, text: str) -> Path:
    """A pairs-file path: literal, relative to ``root``, or its last two components under it."""
    literal = Path(text)
    if literal.is_absolute() and literal.exists():
        return literal
    relative = root / text.lstrip("/")
    if relative.exists():
        return relative
    tail = root.joinpath(*literal.parts[-2:])
    return tail if tail.exists() else relative


def _id_of(match: re.Match[str]) -> str:
    """Group ``id``, else every group joined by ``_`` (one group: itself)."""
    if "id" in match.re.groupindex:
        return match.group("id")
    return "_".join(group for group in match.groups() if group is not None)


def id_from_stem(stem: str, pattern: re.Pattern[str] | None) -> str:
    """The id of a file stem: ``data.id_pattern``'s ``id`` group (else its groups joined by
    ``_``), or the stem when there is no pattern or it does not match."""
    if pattern is None:
        return stem
    match = pattern.search(stem)
    return stem if match is None else _id_of(match)


def _identify(
    image: Path, root: Path, pattern: re.Pattern[str] | None
) -> tuple[str, dict[str, str]]:
    """The id of an image and the template fields (``stem``, ``id``, named groups).

    A pattern with a ``/`` is searched in the image's path under ``root`` without its suffix
    (``"Tile 1/images/image_part_001"``), any other in the stem.
    """
    target = image.stem
    if pattern is not None and "/" in pattern.pattern:
        try:
            target = image.relative_to(root).with_suffix("").as_posix()
        except ValueError:  # a pairs-file path outside root
            target = image.with_suffix("").as_posix()
    match = None if pattern is None else pattern.search(target)
    if match is None:
        return image.stem, {"stem": image.stem, "id": image.stem}
    named = {k: v for k, v in match.groupdict().items() if v is not None and k != "id"}
    return _id_of(match), {**named, "stem": image.stem, "id": _id_of(match)}


def fill_template(template: str, key: str, **fields: str) -> str:
    """Fill a path template with ``{stem}``/``{id}`` (and named groups); a bad template names
    ``data.<key>``."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        names = ", ".join(f"{{{name}}}" for name in fields)
        raise ConfigError(
            f"data.{key}: template {template!r} may only use {names} ({exc})"
        ) from exc


def _paths(
    data: DataConfig, root: Path, image: Path, mask: Path | None, pattern: re.Pattern[str] | None
) -> SamplePaths:
    """One sample's files; ``mask`` from the template when ``None``."""
    sample_id, fields = _identify(image, root, pattern)
    if mask is None:
        mask = root / fill_template(data.masks, "masks", **fields)
    valid = None
    if data.valid_mask:
        valid = root / fill_template(data.valid_mask, "valid_mask", **fields)
    return SamplePaths(sample_id, image, mask, valid)


def find_samples(data: DataConfig) -> list[SamplePaths]:
    """List the samples of a ``[data]`` section without opening any image.

    Raises:
        DataError: the root folder or the pairs file does not exist, or a pairs line is malformed.
        ConfigError: a bad ``id_pattern`` or template.
    """
    root = Path(data.root)
    if not root.is_dir():
        raise DataError(root, "data root folder not found (set data.root or PIXELSEG_DATA)")
    try:
        pattern = re.compile(data.id_pattern) if data.id_pattern else None
    except re.error as exc:
        raise ConfigError(f"data.id_pattern: {exc}") from exc
    if pattern is not None and pattern.groups == 0:
        raise ConfigError("data.id_pattern: needs a group, e.g. '(\\d+)_training'")
    samples = []
    if data.pairs_file:
        pairs_path = root / data.pairs_file
        if not pairs_path.is_file():
            raise DataError(pairs_path, "pairs file not found")
        for number, line in enumerate(pairs_path.read_text().splitlines(), start=1):
            parts = line.split()
            if not parts or line.lstrip().startswith("#"):
                continue
            if len(parts) != 2:
                raise DataError(pairs_path, f"line {number}: expected 'image mask', got {line!r}")
            image, mask = _resolve(root, parts[0]), _resolve(root, parts[1])
            samples.append(_paths(data, root, image, mask, pattern))
        return samples
    for image in sorted(root.glob(data.images), key=_natural_key):
        if image.is_file():
            samples.append(_paths(data, root, image, None, pattern))
    return samples


class MaskFolderDataset(Dataset[SemanticSample]):
    """A semantic dataset of image files with mask files.

    Args:
        data: the ``[data]`` section (``root`` already resolved).
        ids: the sample ids to keep (a split), or ``None`` for all.
        transform: a :class:`~pixelseg.data.transforms.CropFirstTransform` or
            :class:`~pixelseg.data.transforms.SegmentationTransform` (given the arrays as
            stored), or any ``(image (C, H, W) float, mask (H, W) int64) -> (image, mask)``;
            applied before normalisation (8-bit images are in ``[0, 1]`` then).
        normalizer: applied last; nodata pixels are set to the band mean first so they become 0.
        samples: the samples already listed (:func:`find_samples`); listed again when ``None``.
        in_channels: the band count when already known (else read from the first image).
        class_counts: labelled pixels per class ``(num_classes,)`` over exactly these samples,
            when already counted (by the data check); ``None`` otherwise.
        cache: decoded samples shared by the datasets of one build (see
            :mod:`pixelseg.data.cache`), or ``None`` to decode on every access.
        crop_sampling: how the training crops are placed (see
            :func:`~pixelseg.data.foreground.semantic_crop_sampling`), for the log.

    Attributes:
        class_counts: as given (see :func:`~pixelseg.data.build.class_pixel_counts`).
        cache: as given.
        crop_sampling: as given.

    Raises:
        DataError: no samples, or a requested id that does not exist.
    """

    def __init__(
        self,
        data: DataConfig,
        *,
        ids: Sequence[str] | None = None,
        transform: Transform | ArrayTransform | None = None,
        normalizer: Normalizer | None = None,
        samples: Sequence[SamplePaths] | None = None,
        in_channels: int | None = None,
        class_counts: np.ndarray | None = None,
        cache: SampleCache | None = None,
        crop_sampling: dict[str, Any] | None = None,
    ) -> None:
        self.data = data
        self.classmap = ClassMap.from_config(data)
        every = find_samples(data) if samples is None else list(samples)
        if ids is not None:
            by_id = {s.id: s for s in every}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise DataError(data.root, f"unknown sample ids {', '.join(missing[:5])}")
            every = [by_id[i] for i in ids]
        self.samples = every
        self.transform = transform
        self.normalizer = normalizer
        self.class_counts = class_counts
        self.cache = cache
        self.crop_sampling = crop_sampling
        self._in_channels = in_channels

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def ignore_index(self) -> int:
        """Label of pixels never counted."""
        return self.classmap.ignore_index

    @property
    def num_classes(self) -> int:
        """Number of real classes."""
        return self.classmap.num_classes

    @property
    def in_channels(self) -> int:
        """Band count of the images (as given, else read once from the first sample)."""
        if self._in_channels is None:
            self._in_channels = first_image_bands(self.samples, self.data)
        return self._in_channels

    def compact(self, index: int) -> CompactSample:
        """Sample ``index`` packed (:mod:`pixelseg.data.compact`): from the cache, or decoded
        (and cached when it fits)."""
        key = sample_key(self.samples[index])
        cached = None if self.cache is None else self.cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        loaded = load_sample(self.samples[index], self.classmap, self.data)
        packed = pack_sample(loaded, num_classes=self.num_classes, ignore_index=self.ignore_index)
        if self.cache is not None:
            self.cache.put(key, packed)
        return packed

    def load(self, index: int) -> LoadedSample:
        """The raw sample ``index`` (see :func:`load_sample`; no raw mask when cached)."""
        if self.cache is None:
            return load_sample(self.samples[index], self.classmap, self.data)
        return self.compact(index).to_loaded()

    def __getitem__(self, index: int) -> SemanticSample:
        paths = self.samples[index]
        packed = self.compact(index)
        fill = self.normalizer.mean if self.normalizer else None
        if isinstance(self.transform, ArrayTransform):
            image, mask = self.transform.from_arrays(
                packed.image, packed.label, nodata=packed.nodata, fill=fill, rows=packed.rows
            )
        else:
            image = image_to_float(packed.image)
            if packed.nodata is not None:
                values = torch.tensor(fill if fill is not None else (0.0,) * len(image))
                image[:, torch.tensor(packed.nodata)] = values[:, None].to(image.dtype)
            mask = torch.from_numpy(packed.label.astype(np.int64))
            if self.transform is not None:
                image, mask = self.transform(image, mask)
        if self.normalizer is not None:
            image = self.normalizer(image)
        meta = {
            "image_path": str(paths.image),
            "mask_path": str(paths.mask),
            "orig_size": tuple(packed.label.shape),
            "ignore_index": self.ignore_index,
        }
        return SemanticSample(
            image=image.contiguous(), mask=mask.contiguous(), id=paths.id, meta=meta
        )
