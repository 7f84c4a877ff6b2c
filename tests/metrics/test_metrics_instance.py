"""Instance metrics: matching AP, merges/splits, counting, COCO AP against pycocotools."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pycocotools import coco as pycoco
from pycocotools import cocoeval as pycoco_eval
from pycocotools import mask as pycoco_mask

from pixelseg.metrics.coco import encode_label_image, summarize_precision
from pixelseg.metrics.instance import InstanceEvaluator
from pixelseg.metrics.matching import MATCHING_THRESHOLDS, label_image_overlap, match_counts


def _square(image: np.ndarray, label: int, top: int, left: int, size: int) -> None:
    image[top : top + size, left : left + size] = label


def _three_objects_case() -> tuple[np.ndarray, np.ndarray]:
    """Truth: 3 squares of 10x10. Prediction: exact, shifted by 2 columns, missing, plus an FP."""
    true = np.zeros((40, 60), dtype=np.int32)
    _square(true, 1, 2, 2, 10)
    _square(true, 2, 2, 20, 10)
    _square(true, 3, 20, 2, 10)
    pred = np.zeros_like(true)
    _square(pred, 5, 2, 2, 10)  # IoU 1.0 with true 1
    _square(pred, 9, 2, 22, 10)  # IoU 80 / 120 = 0.667 with true 2
    _square(pred, 7, 25, 40, 8)  # false positive
    return pred, true


def test_matching_counts_on_known_case() -> None:
    pred, true = _three_objects_case()
    overlap, pred_ids, true_ids = label_image_overlap(pred, true)
    assert pred_ids.tolist() == [5, 7, 9] and true_ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(overlap.iou[2, 1], 80 / 120)
    tp, fp, fn = match_counts(overlap.iou, MATCHING_THRESHOLDS)
    # IoU 0.667 passes 0.50..0.65 (4 thresholds), IoU 1.0 passes all 10.
    assert tp.tolist() == [2] * 4 + [1] * 6
    assert fp.tolist() == [1] * 4 + [2] * 6
    assert fn.tolist() == [1] * 4 + [2] * 6

    evaluator = InstanceEvaluator(compute_coco=False)
    evaluator.update(pred, true)
    result = evaluator.compute()
    pooled = result["matching_ap_pooled"]
    assert pooled["ap50"] == pytest.approx(2 / 4)
    assert pooled["per_threshold"]["0.70"] == pytest.approx(1 / 5)
    assert pooled["mean"] == pytest.approx((4 * 0.5 + 6 * 0.2) / 10)
    assert result["counting"]["count_mae"] == 0.0
    assert result["counting"]["merges"] == 0 and result["counting"]["splits"] == 0


def test_hungarian_matching_is_one_to_one() -> None:
    # One prediction overlaps two truths with IoU >= 0.5 is impossible for disjoint masks, but
    # with a low threshold a greedy match could take the wrong pair; optimal gives two matches.
    iou = np.array([[0.45, 0.40], [0.42, 0.0]])
    tp, fp, fn = match_counts(iou, (0.3,))
    assert (tp[0], fp[0], fn[0]) == (2, 0, 0)


def test_merges_and_splits() -> None:
    true = np.zeros((30, 60), dtype=np.int32)
    _square(true, 1, 5, 2, 10)
    _square(true, 2, 5, 12, 10)  # touches true 1
    _square(true, 3, 5, 35, 20)
    pred = np.zeros_like(true)
    pred[5:15, 2:22] = 1  # one blob over both touching squares: a merge
    pred[5:25, 35:45] = 2  # true 3 split in two halves: a split
    pred[5:25, 45:55] = 3
    evaluator = InstanceEvaluator(compute_coco=False)
    evaluator.update(pred, true)
    counting = evaluator.compute()["counting"]
    assert counting["merges"] == 1
    assert counting["splits"] == 1
    assert counting["per_image"][0]["true_count"] == 3
    assert counting["per_image"][0]["pred_count"] == 3
    # The blob has IoU exactly 0.5 with each square and each half with true 3: with StarDist's
    # IoU >= t, one pair of each matches at 0.50 and none at 0.55.
    tp = evaluator.compute()["matching_ap_pooled"]["tp"]
    assert tp[0] == 2 and tp[1] == 0


def test_pooled_and_per_image_differ() -> None:
    evaluator = InstanceEvaluator(compute_coco=False)
    true_a = np.zeros((20, 20), dtype=np.int32)
    _square(true_a, 1, 2, 2, 6)
    evaluator.update(true_a.copy(), true_a, image_id="a")  # perfect: score 1
    true_b = np.zeros((20, 20), dtype=np.int32)
    for label, left in enumerate((1, 7, 13), start=1):
        _square(true_b, label, 2, left, 5)
    evaluator.update(np.zeros_like(true_b), true_b, image_id="b")  # nothing found: score 0
    result = evaluator.compute()
    assert result["matching_ap_pooled"]["ap50"] == pytest.approx(1 / 4)
    assert result["matching_ap_per_image"]["ap50"] == pytest.approx(1 / 2)
    counting = result["counting"]
    assert counting["count_mae"] == pytest.approx(1.5)
    assert counting["count_mean_relative_error"] == pytest.approx(0.5)
    assert [row["image_id"] for row in counting["per_image"]] == ["a", "b"]


def test_mask_stack_input_equals_label_image_input() -> None:
    pred, true = _three_objects_case()
    scores = {5: 0.9, 9: 0.8, 7: 0.3}
    from_labels = InstanceEvaluator()
    from_labels.update(pred, true, scores=scores)
    pred_ids = [5, 7, 9]
    from_masks = InstanceEvaluator()
    from_masks.update(
        [pred == i for i in pred_ids], [true == i for i in (1, 2, 3)], [scores[i] for i in pred_ids]
    )
    a, b = from_labels.compute(), from_masks.compute()
    assert a["matching_ap_pooled"] == b["matching_ap_pooled"]
    assert a["coco"] == b["coco"]


def test_rle_from_label_image_matches_pycocotools() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 6, size=(13, 17))
    ids, rles = encode_label_image(labels)
    assert ids.tolist() == [1, 2, 3, 4, 5]
    for label, rle in zip(ids, rles):
        reference = pycoco_mask.encode(np.asfortranarray((labels == label).astype(np.uint8)))
        assert rle["counts"] == reference["counts"].decode("ascii")


def _random_objects(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Label image of ``count`` non-overlapping rectangles of varied sizes on a grid."""
    labels = np.zeros((size, size), dtype=np.int32)
    cell = size // int(np.ceil(np.sqrt(count)))
    for index in range(count):
        top, left = (index // (size // cell)) * cell, (index % (size // cell)) * cell
        height, width = rng.integers(2, cell, size=2)
        labels[top : top + height, left : left + width] = index + 1
    return labels


def _perturbed(rng: np.random.Generator, truth: np.ndarray) -> tuple[np.ndarray, dict[int, float]]:
    """Prediction: objects shifted or trimmed at random, some dropped, some false positives."""
    pred = np.zeros_like(truth)
    next_id = 1
    for label in np.unique(truth)[1:]:
        if rng.random() < 0.15:
            continue
        mask = np.roll(truth == label, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 2)))
        pred[mask & (pred == 0)] = next_id
        next_id += 1
    for _ in range(3):
        top, left = rng.integers(0, truth.shape[0] - 6, size=2)
        pred[top : top + 5, left : left + 5] = next_id
        next_id += 1
    present = np.unique(pred)[1:]
    return pred, {int(i): float(rng.random()) for i in present}


def _pycocotools_eval(
    truths: list[np.ndarray], preds: list[np.ndarray], scores: list[dict[int, float]], max_dets: int
) -> pycoco_eval.COCOeval:
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    for image_id, (truth, pred, score) in enumerate(zip(truths, preds, scores), start=1):
        images.append({"id": image_id, "height": truth.shape[0], "width": truth.shape[1]})
        for label in np.unique(truth)[1:]:
            rle = pycoco_mask.encode(np.asfortranarray((truth == label).astype(np.uint8)))
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": rle,
                    "area": float(pycoco_mask.area(rle)),
                    "bbox": pycoco_mask.toBbox(rle).tolist(),
                    "iscrowd": 0,
                }
            )
        for label in np.unique(pred)[1:]:
            rle = pycoco_mask.encode(np.asfortranarray((pred == label).astype(np.uint8)))
            detections.append(
                {"image_id": image_id, "category_id": 1, "segmentation": rle, "score": score[label]}
            )
    gt = pycoco.COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1}]}
    gt.createIndex()
    evaluator = pycoco_eval.COCOeval(gt, gt.loadRes(detections), iouType="segm")
    evaluator.params.maxDets = [1, 10, max_dets]
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


def test_coco_ap_equals_pycocotools() -> None:
    rng = np.random.default_rng(0)
    truths = [_random_objects(rng, 30, 200), _random_objects(rng, 12, 200)]
    pairs = [_perturbed(rng, t) for t in truths]
    evaluator = InstanceEvaluator()
    for truth, (pred, score) in zip(truths, pairs):
        evaluator.update(pred, truth, scores=score)
    coco = evaluator.compute()["coco"]
    reference = _pycocotools_eval(truths, [p for p, _ in pairs], [s for _, s in pairs], 100)
    reference.summarize()
    assert coco["max_detections"] == 100 and coco["max_detections_raised"] is False
    assert 0.1 < coco["AP"] < 0.95  # a non-trivial case
    for index, key in enumerate(["AP", "AP50", "AP75", "AP_small", "AP_medium"]):
        assert coco[key] == pytest.approx(reference.stats[index], abs=1e-6), key


def test_max_detections_raised_above_100() -> None:
    rng = np.random.default_rng(2)
    truth = _random_objects(rng, 150, 300)
    pred, score = _perturbed(rng, truth)
    raised = InstanceEvaluator()
    raised.update(pred, truth, scores=score)
    coco = raised.compute()["coco"]
    assert coco["max_detections_raised"] is True
    assert coco["max_detections"] == max(len(np.unique(truth)), len(np.unique(pred))) - 1
    reference = _pycocotools_eval([truth], [pred], [score], coco["max_detections"])
    expected = summarize_precision(
        reference.eval["precision"],
        reference.params.iouThrs,
        list(reference.params.areaRngLbl),
    )
    for key in ("AP", "AP50", "AP75"):
        assert coco[key] == pytest.approx(expected[key], abs=1e-6), key

    capped = InstanceEvaluator(max_detections=100)
    capped.update(truth, truth)  # perfect masks, but only 100 of 150 may be detected
    capped_coco = capped.compute()["coco"]
    assert capped_coco["max_detections_raised"] is False
    assert capped_coco["AP50"] < 0.7
    perfect = InstanceEvaluator()
    perfect.update(truth, truth)
    assert perfect.compute()["coco"]["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, np.uint64])
@pytest.mark.parametrize("background", [True, False])
def test_overlap_equals_the_unique_based_overlap(dtype: Any, background: bool) -> None:
    # The lookup-table path of the label mapping must give what np.unique gives: gaps in the
    # ids, images without background, every integer dtype.
    from pixelseg.metrics import matching

    rng = np.random.default_rng(3)
    pred = rng.choice(np.array([0, 3, 4, 9, 200], dtype=dtype), size=(30, 40))
    true = rng.choice(np.array([0, 1, 2, 7], dtype=dtype), size=(30, 40))
    if not background:
        pred[pred == 0], true[true == 0] = 3, 7
    for image in (pred, true):
        mapped, ids = matching._sequential(image)
        unique_ids, inverse = np.unique(image, return_inverse=True)
        expected_ids = unique_ids[unique_ids != 0]
        expected = inverse.reshape(image.shape) + (0 if background else 1)
        np.testing.assert_array_equal(ids, expected_ids)
        np.testing.assert_array_equal(mapped, expected)
    overlap, pred_ids, true_ids = label_image_overlap(pred, true)
    for row, p in enumerate(pred_ids):
        for col, t in enumerate(true_ids):
            assert overlap.intersection[row, col] == np.count_nonzero((pred == p) & (true == t))
