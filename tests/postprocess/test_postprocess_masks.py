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
