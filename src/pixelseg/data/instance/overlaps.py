"""Painting per-object masks into one label image, refusing (or resolving tiny) overlaps.

Every instance format is read into a label image, which cannot hold two objects on one pixel:
overlaps are found here, named pair by pair, and either refused or, when tiny, resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelseg.errors import DataError

_MAX_LISTED = 5


def overlap_problem(pairs: list[tuple[str, str, int, float]], where: str) -> str:
    """The one-line text of overlapping objects: ``(name_a, name_b, pixels, fraction)`` pairs."""
    listed = "; ".join(
        f"{a} and {b} ({n} px, {100 * f:.1f} % of the smaller)"
        for a, b, n, f in pairs[:_MAX_LISTED]
    )
    more = f" and {len(pairs) - _MAX_LISTED} more pairs" if len(pairs) > _MAX_LISTED else ""
    return f"overlapping objects in {where}: {listed}{more}"


@dataclass
class PaintedObjects:
    """Objects painted into one label image.

    Attributes:
        label_image: ``(H, W)`` int32, ``k`` for the ``k``-th kept object.
        kept: indices (into the input list) of the objects with pixels.
        empty: names of the objects without any pixel.
        resolved: the text of the small overlaps given to the earlier object ("" for none).
    """

    label_image: np.ndarray
    kept: list[int]
    empty: list[str]
    resolved: str = ""


def paint_objects(
    masks: list[tuple[str, np.ndarray]],
    shape: tuple[int, int],
    *,
    where: str,
    path: Path,
    max_overlap: float = 0.0,
) -> PaintedObjects:
    """Paint named boolean masks into a label image, refusing overlaps.

    An overlap of at most ``max_overlap`` of the smaller object's area is annotation noise
    (DSB2018 has a few of one or two pixels): its pixels stay with the object listed first and
    the overlap is reported in ``resolved``.

    Args:
        masks: ``(name, (H, W) bool)`` per object.
        shape: ``(H, W)``.
        where: what to call the image in an overlap message.
        path: the file an overlap error names.
        max_overlap: the largest overlap tolerated, as a fraction of the smaller object.

    Raises:
        DataError: objects overlap by more; the message lists the pairs.
    """
    label_image = np.zeros(shape, dtype=np.int32)
    kept: list[int] = []
    areas: list[int] = []
    empty: list[str] = []
    small: list[tuple[str, str, int, float]] = []
    large: list[tuple[str, str, int, float]] = []
    for index, (name, mask) in enumerate(masks):
        area = int(mask.sum())
        if not area:
            empty.append(name)
            continue
        hit = np.bincount(label_image[mask], minlength=len(kept) + 1)
        for position in np.flatnonzero(hit[1:]) + 1:
            pixels = int(hit[position])
            fraction = pixels / min(area, areas[position - 1])
            pair = (masks[kept[position - 1]][0], name, pixels, fraction)
            (small if fraction <= max_overlap else large).append(pair)
        kept.append(index)
        areas.append(area)
        label_image[mask & (label_image == 0)] = len(kept)
    if large:
        raise DataError(path, overlap_problem(large, where))
    resolved = overlap_problem(small, where) if small else ""
    return PaintedObjects(label_image, kept, empty, resolved)
