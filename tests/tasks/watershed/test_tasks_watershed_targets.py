"""Watershed targets on hand-made touching discs: boundary class, border weights, distance."""

from __future__ import annotations

import numpy as np
from skimage.draw import disk
from skimage.segmentation import find_boundaries

from pixelseg.tasks.watershed.targets import BACKGROUND, BOUNDARY, INTERIOR, watershed_targets


def _discs() -> np.ndarray:
    """Two discs touching along column 29/30, a third disc far away."""
    labels = np.zeros((64, 96), dtype=np.int32)
    for label, (row, col) in enumerate([(30, 20), (30, 39), (30, 80)], start=1):
        rr, cc = disk((row, col), 10, shape=labels.shape)
        labels[rr, cc] = label
    return labels


def test_class_map_boundaries_two_pixels_wide() -> None:
    labels = _discs()
    class_map = watershed_targets(labels)["class_map"]
    assert class_map.dtype == np.int64 and class_map.shape == labels.shape
    np.testing.assert_array_equal(class_map == BACKGROUND, labels == 0)
    outer_ring = find_boundaries(labels, mode="inner") & (labels > 0)
    assert (class_map[outer_ring] == BOUNDARY).all()
    # Along the row through the centres: 2 boundary pixels at each disc edge, on both sides of
    # the seam between the touching discs.
    row = class_map[30]  # disc 1 spans columns 11..29, disc 2 columns 30..48
    assert row[10:14].tolist() == [BACKGROUND, BOUNDARY, BOUNDARY, INTERIOR]
    assert row[27:33].tolist() == [INTERIOR] + [BOUNDARY] * 4 + [INTERIOR]
    assert row[46:50].tolist() == [INTERIOR, BOUNDARY, BOUNDARY, BACKGROUND]
    boundary = class_map == BOUNDARY
    interior = class_map == INTERIOR
    assert not (interior & outer_ring).any()
    assert boundary.sum() < (labels > 0).sum() / 2
    one_wide = watershed_targets(labels, boundary_width=1)["class_map"] == BOUNDARY
    np.testing.assert_array_equal(one_wide, outer_ring)


def test_weights_highest_in_the_gap_between_touching_discs() -> None:
    labels = _discs()
    # Move disc 2 one pixel right: a one-pixel gap (column 30), as between the U-Net paper's cells.
    labels[labels == 2] = 0
    rr, cc = disk((30, 40), 10, shape=labels.shape)
    labels[rr, cc] = 2
    targets = watershed_targets(labels, w0=10.0, sigma=5.0)
    weights = targets["weight_map"]
    assert weights.dtype == np.float32
    background = labels == 0
    gap_pixel = weights[30, 30]
    assert labels[30, 30] == 0
    assert gap_pixel == weights[background].max()
    assert gap_pixel > 9.0  # w_c + w0 * exp(-(1 + 1)^2 / 50)
    # Far from any object only the class-balancing weight remains.
    far = weights[2, 60]
    assert far < 1.5
    # Pixels of the same class get the same class weight.
    assert np.unique(weights[targets["class_map"] == INTERIOR]).size == 1


def test_distance_normalised_per_object() -> None:
    labels = _discs()
    distance = watershed_targets(labels, with_distance=True)["distance"]
    assert distance.dtype == np.float32
    assert (distance[labels == 0] == 0).all()
    for label in (1, 2, 3):
        inside = distance[labels == label]
        assert inside.max() == 1.0 and inside.min() > 0
    assert distance[30, 80] == 1.0  # the free disc's centre
