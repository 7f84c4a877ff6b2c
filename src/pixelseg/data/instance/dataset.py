"""Instance datasets and batches: one :class:`InstanceSample` per image, whatever the format.

:func:`collate_detection` returns a :class:`~pixelseg.structures.Batch` that serves both kinds
of models: ``images`` padded to one size ``(N, C, H, W)`` and ``targets`` (one dict of
``boxes``, ``labels``, ``masks`` per image, masks padded like the images) for torchvision's
detection models — ``list(batch.images), batch.targets`` is what they take (see
:func:`detection_inputs`) — and ``masks``, the semantic view (union of the object masks as a class
map, ``ignore_index`` on ignored and padded pixels), for semantic models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from pixelseg.config import DataConfig
from pixelseg.data.cache import SampleCache
from pixelseg.data.instance.compact import (
    CompactInstances,
    instance_key,
    pack_instances,
    sample_from_compact,
)
from pixelseg.data.instance.crop import Plane
from pixelseg.data.instance.formats import InstanceFiles, InstanceSource, LoadedInstances
from pixelseg.data.instance.transforms import CompactTransform
from pixelseg.data.normalize import Normalizer
from pixelseg.data.plan import first_image_bands
from pixelseg.errors import DataError
from pixelseg.structures import Batch, InstanceSample, SemanticSample

InstanceTransformFn = Callable[[InstanceSample], InstanceSample]
#: Full-size planes to crop with a training sample: ``(cache key, packed sample) -> planes``.
PlanesFn = Callable[[tuple[str, str], CompactInstances], Mapping[str, Plane]]
DEFAULT_IGNORE_INDEX = 255


class InstanceDataset(Dataset[InstanceSample]):
    """A dataset of images with one mask per object (Kaggle layout, label images or COCO).

    Args:
        data: the ``[data]`` section (``root`` resolved), an instance ``format``.
        ids: the sample ids to keep (a split), or ``None`` for all.
        transform: from :func:`~pixelseg.data.instance.transforms.build_instance_transforms`
            (given the packed sample), or any ``InstanceSample -> InstanceSample``; applied
            before normalisation (8-bit images are in ``[0, 1]`` then).
        normalizer: applied last.
        source: the source that already listed the samples; listed again when ``None``.
        in_channels: the band count when already known (else read from the first image).
        object_areas: per sample id, the ``(N,)`` pixel areas of its objects when already
            measured (by the data check), or ``None``.
        cache: decoded samples shared by the datasets of one build (see
            :mod:`pixelseg.data.cache`), or ``None`` to decode on every access.
        crop_sampling: how the training crops are placed (see
            :func:`~pixelseg.data.foreground.instance_crop_sampling`), for the log.

    Attributes:
        object_areas: as given.
        cache: as given.
        crop_sampling: as given.

    Raises:
        DataError: a requested id that does not exist, or the source cannot be listed.
        ConfigError: not an instance format.
    """

    def __init__(
        self,
        data: DataConfig,
        *,
        ids: Sequence[str] | None = None,
        transform: InstanceTransformFn | CompactTransform | None = None,
        normalizer: Normalizer | None = None,
        source: InstanceSource | None = None,
        in_channels: int | None = None,
        object_areas: dict[str, np.ndarray] | None = None,
        cache: SampleCache | None = None,
        crop_sampling: dict[str, Any] | None = None,
    ) -> None:
        self.data = data
        self.source = InstanceSource(data) if source is None else source
        samples = self.source.samples
        if ids is not None:
            by_id = {s.id: s for s in samples}
            missing = [i for i in ids if i not in by_id]
            if missing:
                raise DataError(data.root, f"unknown sample ids {', '.join(missing[:5])}")
            samples = [by_id[i] for i in ids]
        self.samples: list[InstanceFiles] = samples
        self.transform = transform
        self.normalizer = normalizer
        self.object_areas = object_areas
        self.cache = cache
        self.crop_sampling = crop_sampling
        self._in_channels = in_channels

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def classes(self) -> tuple[str, ...]:
        """Foreground class names; label ``k`` is ``classes[k - 1]``."""
        return self.source.classes

    @property
    def num_classes(self) -> int:
        """Number of foreground classes (background not counted, as ``create_mask_rcnn``)."""
        return len(self.source.classes)

    @property
    def in_channels(self) -> int:
        """Band count of the images (as given, else read once from the first sample)."""
        if self._in_channels is None:
            self._in_channels = first_image_bands(self.samples, self.data)
        return self._in_channels

    def compact(self, index: int) -> CompactInstances:
        """Sample ``index`` packed (:mod:`pixelseg.data.instance.compact`): from the cache, or
        decoded (and cached when it fits)."""
        key = instance_key(self.samples[index])
        cached = None if self.cache is None else self.cache.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        packed = pack_instances(self.source.load(self.samples[index]))
        if self.cache is not None:
            self.cache.put(key, packed)
        return packed

    def load(self, index: int) -> LoadedInstances:
        """The raw sample ``index`` (see :meth:`InstanceSource.load`)."""
        if self.cache is None:
            return self.source.load(self.samples[index])
        return self.compact(index).to_loaded()

    def sample(
        self, index: int, *, planes: PlanesFn | None = None, masks: bool = True
    ) -> tuple[InstanceSample, dict[str, torch.Tensor]]:
        """Sample ``index`` transformed and normalised, with the planes cropped alike.

        Args:
            index: the sample.
            planes: full-size planes to crop with it (training crops only; see
                :class:`~pixelseg.data.instance.crop.InstanceCropTransform`).
            masks: build the per-object masks (training crops may skip them when only the
                ``"instances"`` label image is used).

        Returns:
            The sample, and the cropped planes with the crop's ``"instances"`` label image
            (empty for a transform that does not crop).
        """
        files = self.samples[index]
        packed = self.compact(index)
        meta = {"image_path": str(files.image), "orig_size": packed.label_image.shape}
        fill = self.normalizer.mean if self.normalizer is not None else None
        extras: dict[str, torch.Tensor] = {}
        if isinstance(self.transform, CompactTransform):
            full = planes(instance_key(files), packed) if planes is not None else None
            sample, extras = self.transform.from_compact(
                packed, files.id, planes=full, masks=masks, fill=fill
            )
            sample.meta = {**sample.meta, **meta}
        else:
            sample = sample_from_compact(packed, files.id)
            sample.meta = meta
            if self.transform is not None:
                sample = self.transform(sample)
        if self.normalizer is not None:
            sample.image = self.normalizer(sample.image)
        sample.image = sample.image.contiguous()
        return sample, extras

    def __getitem__(self, index: int) -> InstanceSample:
        return self.sample(index)[0]


def class_map(sample: InstanceSample, *, ignore_index: int = DEFAULT_IGNORE_INDEX) -> torch.Tensor:
    """The union of a sample's masks as a class map ``(H, W)`` int64.

    0 is background, ``k`` the 1-based class of the objects, ``ignore_index`` the ignored pixels.
    """
    height, width = sample.image.shape[-2:]
    result = torch.zeros((height, width), dtype=torch.int64)
    for mask, label in zip(sample.masks, sample.labels):
        result[mask] = label
    if sample.ignore is not None:
        result[sample.ignore] = ignore_index
    return result


def semantic_view(
    sample: InstanceSample, *, ignore_index: int = DEFAULT_IGNORE_INDEX
) -> SemanticSample:
    """The same image as a semantic sample (see :func:`class_map`) for semantic models.

    The class indices are 0 = background and ``1..K`` the instance classes: a semantic model of
    this view has ``num_classes = K + 1``.
    """
    meta = {**sample.meta, "ignore_index": ignore_index}
    return SemanticSample(
        sample.image, class_map(sample, ignore_index=ignore_index), sample.id, meta
    )


def collate_detection(
    samples: Sequence[InstanceSample], *, ignore_index: int = DEFAULT_IGNORE_INDEX
) -> Batch:
    """Collate instance samples for detection and semantic models alike.

    Samples of different sizes are padded bottom/right to the largest: images with 0, the target
    masks with ``False`` and the semantic class map with ``ignore_index``. Box coordinates do
    not change (the padding is at the bottom and right).

    Returns:
        A :class:`Batch` with ``images`` ``(N, C, H, W)`` float32, ``masks`` ``(N, H, W)`` int64
        (the semantic view) and ``targets``: per image ``{"boxes": (K, 4) float32 XYXY,
        "labels": (K,) int64 1-based, "masks": (K, H, W) uint8}``.
    """
    if not samples:
        raise ValueError("collate_detection: no samples")
    height = max(s.image.shape[-2] for s in samples)
    width = max(s.image.shape[-1] for s in samples)
    images, class_maps, targets = [], [], []
    for s in samples:
        pad = (0, width - s.image.shape[-1], 0, height - s.image.shape[-2])
        images.append(F.pad(s.image, pad, value=0.0))
        class_maps.append(F.pad(class_map(s, ignore_index=ignore_index), pad, value=ignore_index))
        targets.append(
            {
                "boxes": s.boxes.float().reshape(-1, 4),
                "labels": s.labels.long(),
                "masks": F.pad(s.masks.to(torch.uint8), pad, value=0),
            }
        )
    return Batch(
        images=torch.stack(images),
        masks=torch.stack(class_maps),
        ids=[s.id for s in samples],
        targets=targets,
    )


def detection_inputs(batch: Batch) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """``(images, targets)`` as torchvision detection models take them, from a collated batch.

    Raises:
        ValueError: the batch has no targets (a semantic batch).
    """
    if batch.targets is None:
        raise ValueError("detection_inputs: the batch has no instance targets")
    return list(batch.images.unbind(0)), batch.targets
