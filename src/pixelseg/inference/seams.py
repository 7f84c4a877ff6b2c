"""Instances across tile seams: per-tile objects merged into one label image.

The rule (StarDist's): each tile owns the *core* of its area — the part nearer to it than to
any neighbour, the seams running through the middle of each overlap — and keeps the objects
whose centroid lies in its core, so every object has exactly one owner. An object is whole in
its owner tile when the overlap exceeds the largest object (then at least half the overlap lies
between a seam and the tile's edge); :attr:`MergedInstances.cut` counts the kept objects that
still reached an inner tile edge, which says the overlap was too small. The same object found
by two tiles with centroids either side of a seam is one object: objects are placed whole ones
first, then by descending score, and one whose mask overlaps an already placed object by IoU
above ``iou_threshold`` is dropped as a duplicate. Ids are ``1..N``, unique in the image.

Tiles whose task blends per-pixel maps (semantic, watershed) never need this: their maps are
blended across the overlap and post-processed once, so no seam exists
(:mod:`pixelseg.inference.tiled`). It serves tasks whose output is a set of objects (Mask R-CNN).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Two masks overlapping by more than this IoU are one object found twice.
DUPLICATE_IOU = 0.5


@dataclass(frozen=True)
class TileObjects:
    """One tile's objects, where the tile lies in the image and which part of it it owns.

    Attributes:
        top: the tile's first row in the image.
        left: the tile's first column in the image.
        label_image: ``(h, w)`` objects ``1..n`` (0 = background) found in the tile.
        scores: ``(n,)`` confidence of object ``k`` at ``k - 1``.
        labels: ``(n,)`` 1-based class of each object.
        core: ``(top, bottom, left, right)`` in image px (bottom/right exclusive): the objects
            whose centroid lies here are this tile's.
        inner_edges: ``(top, bottom, left, right)``: whether each edge of the tile lies inside
            the image (an object touching such an edge may be cut).
    """

    top: int
    left: int
    label_image: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    core: tuple[int, int, int, int]
    inner_edges: tuple[bool, bool, bool, bool]


@dataclass
class MergedInstances:
    """The merged objects of an image.

    Attributes:
        label_image: ``(H, W)`` int32 objects ``1..N``.
        scores: ``(N,)`` float32.
        labels: ``(N,)`` int64 1-based classes.
        cut: kept objects that reached an inner tile edge (the overlap is smaller than they are).
        duplicates: objects dropped because another tile had placed them already.
    """

    label_image: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    cut: int = 0
    duplicates: int = 0


def core_bounds(starts: Sequence[int], size: int, length: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` of each tile's core along one axis of ``length`` px.

    Tiles start at ``starts`` and are ``size`` px long; a core ends half-way through the overlap
    with the next tile, where the next one's core begins, so the cores partition ``[0, length)``.
    """
    bounds = []
    for index, start in enumerate(starts):
        low = 0 if index == 0 else (starts[index - 1] + size + start) // 2
        high = length if index == len(starts) - 1 else (start + size + starts[index + 1]) // 2
        bounds.append((low, high))
    return bounds


@dataclass
class _Candidate:
    score: float
    label: int
    cut: bool
    top: int
    left: int
    mask: np.ndarray  # (h, w) bool over the object's bounding box


def _candidates(tile: TileObjects) -> list[_Candidate]:
    """The tile's objects whose centroid lies in its core, in image coordinates."""
    found: list[_Candidate] = []
    labels = tile.label_image
    height, width = labels.shape
    core_top, core_bottom, core_left, core_right = tile.core
    inner_top, inner_bottom, inner_left, inner_right = tile.inner_edges
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        mask = labels[box] == index + 1
        rows, cols = np.nonzero(mask)
        centre_y = tile.top + box[0].start + float(rows.mean())
        centre_x = tile.left + box[1].start + float(cols.mean())
        if not (core_top <= centre_y < core_bottom and core_left <= centre_x < core_right):
            continue
        cut = (
            (inner_top and box[0].start == 0)
            or (inner_bottom and box[0].stop == height)
            or (inner_left and box[1].start == 0)
            or (inner_right and box[1].stop == width)
        )
        found.append(
            _Candidate(
                score=float(tile.scores[index]),
                label=int(tile.labels[index]),
                cut=bool(cut),
                top=tile.top + box[0].start,
                left=tile.left + box[1].start,
                mask=mask,
            )
        )
    return found


def merge_tile_objects(
    tiles: Sequence[TileObjects],
    size: tuple[int, int],
    *,
    iou_threshold: float = DUPLICATE_IOU,
) -> MergedInstances:
    """One ``(H, W)`` label image of ``size`` from the tiles' objects (see the module's rule)."""
    candidates = [c for tile in tiles for c in _candidates(tile)]
    # Whole objects before cut ones, then the most confident first.
    candidates.sort(key=lambda c: (c.cut, -c.score))
    label_image = np.zeros(size, dtype=np.int32)
    areas: list[int] = []
    scores: list[float] = []
    classes: list[int] = []
    cut = duplicates = 0
    for candidate in candidates:
        h, w = candidate.mask.shape
        window = label_image[candidate.top : candidate.top + h, candidate.left : candidate.left + w]
        under = window[candidate.mask]
        placed = under[under > 0]
        if placed.size:
            ids, counts = np.unique(placed, return_counts=True)
            best = int(np.argmax(counts))
            inter = int(counts[best])
            union = int(candidate.mask.sum()) + areas[int(ids[best]) - 1] - inter
            if inter / max(union, 1) > iou_threshold:
                duplicates += 1
                continue
        free = candidate.mask & (window == 0)
        if not free.any():
            duplicates += 1
            continue
        window[free] = len(areas) + 1
        areas.append(int(free.sum()))
        scores.append(candidate.score)
        classes.append(candidate.label)
        cut += int(candidate.cut)
    return MergedInstances(
        label_image=label_image,
        scores=np.asarray(scores, dtype=np.float32),
        labels=np.asarray(classes, dtype=np.int64),
        cut=cut,
        duplicates=duplicates,
    )
