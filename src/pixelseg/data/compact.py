"""A decoded semantic sample packed for the cache: as little memory as it takes to restore it.

The image stays in its stored dtype (uint8 / uint16 / float), the class map is kept in the
smallest integer type that holds every class index and the ignore index (uint8 for up to 255
classes and an ignore index of at most 255), the nodata mask only when a pixel is nodata, and
per image row the pixels of each class (:func:`~pixelseg.data.foreground.class_rows`), so a
foreground-centred crop finds a pixel of a rare class without scanning the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pixelseg.data.foreground import class_rows
from pixelseg.data.loading import LoadedSample


def smallest_label_dtype(min_value: int, max_value: int) -> np.dtype:
    """The smallest integer dtype holding ``min_value..max_value`` (unsigned when it can be)."""
    kinds = (np.uint8, np.uint16, np.uint32) if min_value >= 0 else (np.int8, np.int16, np.int32)
    for dtype in kinds:
        info = np.iinfo(dtype)
        if info.min <= min_value and max_value <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


@dataclass
class CompactSample:
    """A :class:`~pixelseg.data.loading.LoadedSample` packed for the cache.

    Attributes:
        image: ``(H, W, C)`` as stored.
        label: ``(H, W)`` class indices and ``ignore_index`` in a compact integer dtype.
        nodata: ``(H, W)`` bool nodata pixels, or ``None`` when there are none.
        rows: ``(H, K)`` int32 pixels of class ``k`` in each row.
    """

    image: np.ndarray
    label: np.ndarray
    nodata: np.ndarray | None
    rows: np.ndarray

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        nodata = 0 if self.nodata is None else self.nodata.nbytes
        return int(self.image.nbytes + self.label.nbytes + nodata + self.rows.nbytes)

    def to_loaded(self) -> LoadedSample:
        """The sample as :func:`~pixelseg.data.loading.load_sample` gives it (no raw mask)."""
        return LoadedSample(self.image, self.label.astype(np.int64), self.nodata, None)


def pack_sample(loaded: LoadedSample, *, num_classes: int, ignore_index: int) -> CompactSample:
    """Pack a decoded sample (the arrays are not copied where their dtype already fits).

    Args:
        loaded: as :func:`~pixelseg.data.loading.load_sample` returns it.
        num_classes: real classes (labels ``0..num_classes - 1``).
        ignore_index: the label of void pixels.
    """
    dtype = smallest_label_dtype(min(ignore_index, 0), max(num_classes - 1, ignore_index))
    label = loaded.label.astype(dtype, copy=False)
    nodata = loaded.nodata if loaded.nodata is not None and loaded.nodata.any() else None
    read_only(loaded.image, label, *([] if nodata is None else [nodata]))
    return CompactSample(loaded.image, label, nodata, class_rows(label, num_classes))


def read_only(*arrays: np.ndarray) -> None:
    """Mark arrays read-only: cached arrays are shared (with forked workers too), so nothing
    may write to them; every transform works on copies of its cuts."""
    for array in arrays:
        array.flags.writeable = False
