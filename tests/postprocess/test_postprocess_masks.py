"""Label images <-> mask stacks, boxes, small-object removal, hole filling, relabelling."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as pycoco_mask

from pixelseg.postprocess.masks import (
    fill_holes,
    label_image_to_boxes,
    label_image_to_masks,
    masks_to_boxes,
    masks_to_label_image,
    relabel_sequential,
    remove_small_objects,
)


def _labels() -> np.ndarray:
    labels = np.zeros((12, 16), dtype=np.int32)
    labels[1:4, 2:7] = 3
    labels[6:11, 9:15] = 8
    labels[5, 0] = 4  # a one-pixel object
    return labels


def test_label_image_mask_round_trip() -> None:
    labels = _labels()
    masks, ids = label_image_to_masks(labels)
    assert masks.shape == (3, 12, 16) and masks.dtype == bool
    assert ids.tolist() == [3, 4, 8]
    assert masks.sum(axis=(1, 2)).tolist() == [15, 1, 30]
    painted = masks_to_label_image(masks)
    np.testing.assert_array_equal(np.where(painted > 0, ids[painted - 1], 0), labels)


def test_overlapping_masks_resolved_by_score() -> None:
    masks = np.zeros((2, 6, 6), dtype=bool)
    masks[0, 0:4, 0:4] = True
    masks[1, 2:6, 2:6] = True
    high_first = masks_to_label_image(masks, np.array([0.9, 0.1]))
    assert high_first[3, 3] == 1 and high_first[5, 5] == 2
    high_second = masks_to_label_image(masks, np.array([0.1, 0.9]))
    assert high_second[3, 3] == 2 and high_second[0, 0] == 1


def test_boxes_match_coco_bbox() -> None:
    labels = _labels()
    masks, ids = label_image_to_masks(labels)
    boxes = masks_to_boxes(masks)
    for mask, box in zip(masks, boxes):
        x, y, w, h = pycoco_mask.toBbox(
            pycoco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        )
        np.testing.assert_allclose(box, [x, y, x + w, y + h])
    box_ids, label_boxes = label_image_to_boxes(labels)
    assert box_ids.tolist() == ids.tolist()
    np.testing.assert_array_equal(label_boxes, boxes)
    assert masks_to_boxes(np.zeros((1, 4, 4), dtype=bool)).tolist() == [[0, 0, 0, 0]]


def test_remove_small_objects_and_relabel() -> None:
    labels = _labels()
    cleaned = remove_small_objects(labels, 2)
    assert set(np.unique(cleaned).tolist()) == {0, 3, 8}
    assert np.array_equal(remove_small_objects(labels, 16) > 0, labels == 8)
    relabeled = relabel_sequential(cleaned)
    assert relabeled.dtype == np.int32
    assert set(np.unique(relabeled).tolist()) == {0, 1, 2}
    assert np.array_equal(relabeled == 1, labels == 3)


def test_fill_holes_only_fills_enclosed_background() -> None:
    labels = np.zeros((10, 10), dtype=np.int32)
    labels[1:6, 1:6] = 1
    labels[3, 3] = 0  # a hole
    labels[2:5, 7:10] = 2
    labels[3, 8] = 0  # a hole in an object touching the image border
    labels[8, 8] = 5
    filled = fill_holes(labels)
    assert filled[3, 3] == 1 and filled[3, 8] == 2
    filled[3, 3] = 0
    filled[3, 8] = 0
    np.testing.assert_array_equal(filled, labels)


def _fill_holes_per_object(label_image: np.ndarray) -> np.ndarray:
    """The textbook rule: every object's own holes filled, one object at a time."""
    from scipy import ndimage

    result = label_image.copy()
    for index, window in enumerate(ndimage.find_objects(label_image)):
        if window is not None:
            crop = label_image[window]
            filled = ndimage.binary_fill_holes(crop == index + 1)
            result[window][filled & (crop == 0)] = index + 1
    return result


def test_fill_holes_equals_the_per_object_fill() -> None:
    # Random blobs with background specks inside them, objects nested in other objects' holes
    # and pockets enclosed by two touching objects: the skipping of objects whose box holds no
    # enclosed background must not change a pixel.
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = np.zeros((48, 64), dtype=np.int32)
        for label in range(1, 9):
            top, left = rng.integers(0, 40), rng.integers(0, 56)
            height, width = rng.integers(3, 16, size=2)
            labels[top : top + height, left : left + width] = label
        labels[rng.random(labels.shape) < 0.08] = 0  # specks: holes and border-linked gaps
        ring = np.zeros_like(labels)
        ring[10:30, 10:30] = 20
        ring[14:26, 14:26] = 0
        ring[18:22, 18:22] = 21  # an object inside another's hole, background around it
        labels = np.where(ring > 0, ring, labels) if rng.random() < 0.5 else labels
        np.testing.assert_array_equal(fill_holes(labels), _fill_holes_per_object(labels))


def test_fill_holes_without_background_or_holes_is_a_copy() -> None:
    full = np.ones((5, 5), dtype=np.int32)
    open_blobs = np.zeros((5, 5), dtype=np.int32)
    open_blobs[1:3, 1:3] = 4
    for labels in (full, open_blobs):
        filled = fill_holes(labels)
        np.testing.assert_array_equal(filled, labels)
        assert filled is not labels
