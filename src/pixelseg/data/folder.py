"""Mask-folder datasets: images paired with masks by file stem or by a pairs list file.

Pairing by stem: ``images`` is a glob under ``root`` and ``masks`` (and ``valid_mask``) templates
with ``{stem}`` (the image name without suffix) and ``{id}`` (the sample id: the stem, or the first
group of ``id_pattern``). Pairing by list: ``pairs_file`` lines ``image mask`` (CamVid's
``train.txt``); paths written for another machine (``/SegNet/CamVid/train/x.png``) are resolved by
their last two components under ``root`` when the literal path does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from pixelseg.config import DataConfig
from pixelseg.data.classmap import ClassMap
from pixelseg.data.io import TIFF_SUFFIXES, read_header, read_image, read_mask, read_valid_mask
from pixelseg.data.normalize import Normalizer, image_to_float
from pixelseg.data.plan import first_image_bands
from pixelseg.errors import ConfigError, DataError
from pixelseg.structures import SemanticSample

Transform = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class SamplePaths:
    """The files of one sample (they may not exist: the check reports that)."""

    id: str
    image: Path
    mask: Path
    valid: Path | None = None


@dataclass
class LoadedSample:
    """A sample read from disk, before transforms.

    Attributes:
        image: ``(H, W, C)`` in the stored dtype.
        label: ``(H, W)`` int64 class indices, ``ignore_index`` for void / invalid / nodata.
        nodata: ``(H, W)`` bool pixels whose image values are nodata, or ``None``.
        raw_mask: the mask as stored (``(H, W)`` or ``(H, W, 3)``).
    """

    image: np.ndarray
    label: np.ndarray
    nodata: np.ndarray | None
    raw_mask: np.ndarray


def _natural_key(path: Path) -> tuple[int, str]:
    match = re.match(r"\d+", path.stem)
    return (int(match.group()) if match else -1, path.name)


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


def id_from_stem(stem: str, pattern: re.Pattern[str] | None) -> str:
    """The id of a file stem: ``data.id_pattern``'s ``id`` (or first) group, else the stem."""
    if pattern is None:
        return stem
    match = pattern.search(stem)
    if match is None:
        return stem
    return match.group("id") if "id" in pattern.groupindex else match.group(1)


def fill_template(template: str, key: str, **fields: str) -> str:
    """Fill a path template with ``{stem}``/``{id}``; a bad template names ``data.<key>``."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"data.{key}: template {template!r} may only use {{stem}} and {{id}} ({exc})"
        ) from exc


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
            sample_id = id_from_stem(image.stem, pattern)
            valid = None
            if data.valid_mask:
                valid = root / fill_template(
                    data.valid_mask, "valid_mask", stem=image.stem, id=sample_id
                )
            samples.append(SamplePaths(sample_id, image, mask, valid))
        return samples
    for image in sorted(root.glob(data.images), key=_natural_key):
        if not image.is_file():
            continue
        sample_id = id_from_stem(image.stem, pattern)
        mask = root / fill_template(data.masks, "masks", stem=image.stem, id=sample_id)
        valid = None
        if data.valid_mask:
            valid = root / fill_template(
                data.valid_mask, "valid_mask", stem=image.stem, id=sample_id
            )
        samples.append(SamplePaths(sample_id, image, mask, valid))
    return samples


def _hw(shape: tuple[int, ...]) -> tuple[int, int]:
    return int(shape[0]), int(shape[1])


def size_mismatch(paths: SamplePaths, image_hw: tuple[int, int], mask_hw: tuple[int, int]) -> str:
    """The problem text for an image and mask of different sizes (EXIF rotation named)."""
    header = read_header(paths.image)
    stored = (header.height, header.width)
    if header.size != stored and mask_hw == stored:
        return (
            f"image {paths.image} is rotated by its EXIF orientation ({header.orientation}) "
            f"to {image_hw[1]}x{image_hw[0]}, but mask {paths.mask} matches only the unrotated "
            f"image ({stored[1]}x{stored[0]}); rotate the mask or strip the EXIF tag"
        )
    return (
        f"mask {paths.mask.name} is {mask_hw[1]}x{mask_hw[0]} but image {paths.image.name} "
        f"is {image_hw[1]}x{image_hw[0]} (width x height)"
    )


def load_sample(paths: SamplePaths, classmap: ClassMap, data: DataConfig) -> LoadedSample:
    """Read, check and encode one sample (no transform, no normalisation).

    Raises:
        DataError: any unreadable file, size mismatch or unknown mask value, naming the file.
    """
    image = read_image(paths.image, max_pixels=data.max_pixels)
    if not paths.mask.is_file():
        raise DataError(paths.mask, f"missing mask for image {paths.image.name}")
    raw = read_mask(paths.mask, max_pixels=data.max_pixels, palette_colours=classmap.expects_colour)
    if raw.shape[:2] != image.shape[:2]:
        raise DataError(paths.mask, size_mismatch(paths, _hw(image.shape), _hw(raw.shape)))
    label = classmap.encode(raw, paths.mask)
    if paths.valid is not None:
        if not paths.valid.is_file():
            raise DataError(paths.valid, f"missing valid-region mask for image {paths.image.name}")
        valid = read_valid_mask(paths.valid)
        if valid.shape != label.shape:
            raise DataError(paths.valid, size_mismatch(paths, _hw(image.shape), _hw(valid.shape)))
        label[~valid] = classmap.ignore_index
    nodata_value = data.nodata
    if nodata_value is None and paths.image.suffix.lower() in TIFF_SUFFIXES:
        nodata_value = read_header(paths.image).nodata  # a GeoTIFF's own GDAL_NODATA tag
    nodata = None
    if nodata_value is not None:
        if np.isnan(nodata_value):
            nodata = np.isnan(image).all(axis=2)
        else:
            nodata = (image == nodata_value).all(axis=2)
        label[nodata] = classmap.ignore_index
    return LoadedSample(image, label, nodata, raw)


class MaskFolderDataset(Dataset[SemanticSample]):
    """A semantic dataset of image files with mask files.

    Args:
        data: the ``[data]`` section (``root`` already resolved).
        ids: the sample ids to keep (a split), or ``None`` for all.
        transform: ``(image (C, H, W) float, mask (H, W) int64) -> (image, mask)``, applied
            before normalisation (8-bit images are in ``[0, 1]`` then).
        normalizer: applied last; nodata pixels are set to the band mean first so they become 0.
        samples: the samples already listed (:func:`find_samples`); listed again when ``None``.
        in_channels: the band count when already known (else read from the first image).
        class_counts: labelled pixels per class ``(num_classes,)`` over exactly these samples,
            when already counted (by the data check); ``None`` otherwise.

    Attributes:
        class_counts: as given (see :func:`~pixelseg.data.build.class_pixel_counts`).

    Raises:
        DataError: no samples, or a requested id that does not exist.
    """

    def __init__(
        self,
        data: DataConfig,
        *,
        ids: Sequence[str] | None = None,
        transform: Transform | None = None,
        normalizer: Normalizer | None = None,
        samples: Sequence[SamplePaths] | None = None,
        in_channels: int | None = None,
        class_counts: np.ndarray | None = None,
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

    def load(self, index: int) -> LoadedSample:
        """The raw sample ``index`` (see :func:`load_sample`)."""
        return load_sample(self.samples[index], self.classmap, self.data)

    def __getitem__(self, index: int) -> SemanticSample:
        paths = self.samples[index]
        loaded = self.load(index)
        image = image_to_float(loaded.image)
        if loaded.nodata is not None and loaded.nodata.any():
            fill = torch.tensor(self.normalizer.mean if self.normalizer else (0.0,) * len(image))
            image[:, torch.from_numpy(loaded.nodata)] = fill[:, None].to(image.dtype)
        mask = torch.from_numpy(loaded.label)
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        if self.normalizer is not None:
            image = self.normalizer(image)
        meta = {
            "image_path": str(paths.image),
            "mask_path": str(paths.mask),
            "orig_size": tuple(loaded.label.shape),
            "ignore_index": self.ignore_index,
        }
        return SemanticSample(
            image=image.contiguous(), mask=mask.contiguous(), id=paths.id, meta=meta
        )
