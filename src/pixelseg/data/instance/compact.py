"""A decoded instance sample packed for the cache.

The image stays as stored; the label image (one value per object) is kept as uint16 when it
has at most 65,535 objects (int32 otherwise); the ignore mask only when a pixel is ignored; and
the object pixels per image row (:func:`~pixelseg.data.foreground.object_rows`), so a
foreground-centred crop finds an object pixel without scanning the image. Per-object masks are
never stored: a crop builds them from its own cut of the label image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from pixelseg.data.compact import read_only
from pixelseg.data.foreground import object_rows
from pixelseg.data.instance.formats import InstanceFiles, LoadedInstances
from pixelseg.data.normalize import image_to_float
from pixelseg.postprocess.masks import label_image_to_boxes
from pixelseg.structures import InstanceSample


def instance_key(files: InstanceFiles) -> tuple[str, str]:
    """The key of an instance sample in a :class:`~pixelseg.data.cache.SampleCache`."""
    return (files.id, str(files.image))


@dataclass
class CompactInstances:
    """A :class:`~pixelseg.data.instance.formats.LoadedInstances` packed for the cache.

    Attributes:
        image: ``(H, W, C)`` as stored.
        label_image: ``(H, W)`` uint16 (or int32), ``k`` where object ``k`` lies.
        ids: ``(N,)`` int64 object ids from the source.
        labels: ``(N,)`` int64 1-based classes.
        ignore: ``(H, W)`` bool ignored pixels, or ``None`` when there are none.
        rows: ``(H, 1)`` int32 object pixels per row.
        empty: names of the objects without pixels (dropped).
        resolved: small overlaps resolved ("" for none).
    """

    image: np.ndarray
    label_image: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray | None
    rows: np.ndarray
    empty: list[str] = field(default_factory=list)
    resolved: str = ""

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.image, self.label_image, self.ids, self.labels, self.rows)
        ignore = 0 if self.ignore is None else self.ignore.nbytes
        return int(sum(a.nbytes for a in arrays) + ignore)

    def to_loaded(self) -> LoadedInstances:
        """The sample as :meth:`~pixelseg.data.instance.formats.InstanceSource.load` gives it."""
        return LoadedInstances(
            self.image,
            self.label_image.astype(np.int32),
            self.ids,
            self.labels,
            self.ignore,
            list(self.empty),
            self.resolved,
        )


def pack_instances(loaded: LoadedInstances) -> CompactInstances:
    """Pack a decoded instance sample."""
    small = len(loaded.ids) <= np.iinfo(np.uint16).max
    label_image = loaded.label_image.astype(np.uint16 if small else np.int32, copy=False)
    ignore = loaded.ignore if loaded.ignore is not None and loaded.ignore.any() else None
    ids = np.asarray(loaded.ids, dtype=np.int64)
    labels = np.asarray(loaded.labels, dtype=np.int64)
    read_only(loaded.image, label_image, ids, labels, *([] if ignore is None else [ignore]))
    return CompactInstances(
        loaded.image,
        label_image,
        ids,
        labels,
        ignore,
        object_rows(label_image),
        list(loaded.empty),
        loaded.resolved,
    )


def sample_from_loaded(loaded: LoadedInstances, sample_id: str) -> InstanceSample:
    """An un-normalised :class:`InstanceSample` (image as :func:`image_to_float` gives it)."""
    _, boxes = label_image_to_boxes(loaded.label_image)
    return InstanceSample(
        image=image_to_float(loaded.image),
        masks=torch.from_numpy(loaded.masks()),
        boxes=torch.from_numpy(boxes).reshape(-1, 4),
        labels=torch.from_numpy(loaded.labels.astype(np.int64)),
        ids=torch.from_numpy(loaded.ids.astype(np.int64)),
        id=sample_id,
        ignore=None if loaded.ignore is None else torch.tensor(loaded.ignore),
    )


def sample_from_compact(packed: CompactInstances, sample_id: str) -> InstanceSample:
    """The whole image of a packed sample with every object's mask (see
    :func:`sample_from_loaded`)."""
    return sample_from_loaded(packed.to_loaded(), sample_id)
