"""The data path listed once: what the check's single pass learns for building the datasets.

``pixelseg train`` checks every sample before it trains. That pass already lists the samples,
splits them and decodes every image and mask, so it also gathers what the datasets need next —
the band count and dtype, the class pixels per split, the training split's per-band statistics
(when ``data.normalize`` needs them) and the objects' areas — and hands them over as a
:class:`DataPlan`, so nothing is listed or decoded a second time before the first step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from pixelseg.config import DataConfig
from pixelseg.data.io import read_image
from pixelseg.data.normalize import BandStats, image_to_float, needs_band_stats
from pixelseg.data.splits import assign_splits
from pixelseg.errors import ConfigError, DataError

SampleT = TypeVar("SampleT")


@dataclass
class DataPlan(Generic[SampleT]):
    """Samples listed and split once, with the statistics the check gathered on the way.

    Attributes:
        samples: every sample, in listing order.
        members: sample ids per split (``train``, ``val``, ``test``).
        complete: every sample was read without error, so the statistics cover every split.
        bands: band count of the first image read, or ``None`` when none was.
        dtype: its stored dtype name, e.g. ``"uint8"``.
        band_stats: the training split's per-band statistics, fed exactly as
            :func:`~pixelseg.data.normalize.choose_normalizer` would be, or ``None`` when the
            normalisation mode needs none (or the band counts differ).
        class_counts: semantic: labelled pixels per class ``(num_classes,)`` int64, per split.
        object_areas: instance: per training sample id, the ``(N,)`` int64 pixel areas of its
            objects (empty ones left out).
    """

    samples: list[SampleT]
    members: dict[str, list[str]]
    complete: bool = False
    bands: int | None = None
    dtype: str | None = None
    band_stats: BandStats | None = None
    class_counts: dict[str, np.ndarray] = field(default_factory=dict)
    object_areas: dict[str, np.ndarray] = field(default_factory=dict)


PlanT = TypeVar("PlanT", bound=DataPlan[Any])


class PlanCollector:
    """Gathers a :class:`DataPlan`'s statistics, one decoded sample at a time.

    Args:
        normalize: ``data.normalize``; whether band statistics are needed is decided from the
            first image, whose kind the datasets are built with.
        band_stats: gather band statistics at all (``pixelseg check`` alone does not need them).
    """

    def __init__(self, normalize: str, *, band_stats: bool) -> None:
        self.normalize = normalize
        self.want_stats = band_stats
        self.bands: int | None = None
        self.dtype: str | None = None
        self.stats: BandStats | None = None
        self._broken = False

    def add_image(self, image: np.ndarray, nodata: np.ndarray | None, *, train: bool) -> None:
        """Note one decoded ``(H, W, C)`` image; a training image feeds the band statistics.

        Args:
            image: as stored (before :func:`~pixelseg.data.normalize.image_to_float`).
            nodata: ``(H, W)`` pixels left out of the statistics, or ``None``.
            train: the sample is in the training split.
        """
        if self.bands is None:
            self.bands, self.dtype = int(image.shape[2]), str(image.dtype)
            if self.want_stats and needs_band_stats(
                self.normalize, bands=self.bands, dtype=self.dtype
            ):
                self.stats = BandStats()
        if not train or self.stats is None or self._broken:
            return
        try:
            self.stats.update(image_to_float(image), None if nodata is None else ~nodata)
        except ConfigError:
            # Band counts differ: building the datasets reads the images again and says so.
            self._broken = True

    def fill(self, plan: PlanT, *, complete: bool) -> PlanT:
        """Put the kind and band statistics into ``plan``; returns it."""
        plan.complete = complete
        plan.bands, plan.dtype = self.bands, self.dtype
        plan.band_stats = None if self._broken else self.stats
        return plan


def plan_splits(data: DataConfig, samples: Sequence[Any]) -> tuple[dict[str, list[str]], int, str]:
    """Assign sample ids to splits and read the band count and dtype of the first image.

    Args:
        data: the ``[data]`` section.
        samples: the dataset's samples (each with ``.id`` and ``.image``).

    Returns:
        ``(members per split, bands, dtype name)``.

    Raises:
        DataError: no samples.
    """
    if not samples:
        raise DataError(data.root, "empty dataset: no samples found")
    members = assign_splits([s.id for s in samples], data.split)
    first = read_image(samples[0].image, max_pixels=data.max_pixels)
    return members, int(first.shape[2]), str(first.dtype)


def first_image_bands(samples: Sequence[Any], data: DataConfig) -> int:
    """Band count of the first sample's image (each sample has ``.image``), read once.

    Raises:
        DataError: no samples.
    """
    if not samples:
        raise DataError(data.root, "dataset is empty")
    return int(read_image(samples[0].image, max_pixels=data.max_pixels).shape[2])
