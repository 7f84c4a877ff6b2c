"""COCO mask AP with faster-coco-eval, from label images or mask stacks.

Masks are kept as compressed RLE (a few hundred bytes per object) so a whole split can be held
until :func:`coco_mask_ap` runs the COCO protocol once over every image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster
from faster_coco_eval.core import mask as mask_api

from pixelseg.metrics.results import CocoResult

#: COCO's detections-per-image limit; raised when an image holds more objects.
COCO_MAX_DETECTIONS = 100

_AREA_KEYS = {"AP_small": "small", "AP_medium": "medium", "AP_large": "large"}


def _compress(rle: dict[str, Any]) -> dict[str, Any]:
    """Compressed RLE with ``counts`` as ``str`` (what a COCO JSON file holds)."""
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
    }


def encode_label_image(label_image: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Compressed COCO RLE of every object of a label image, without one full mask per object.

    Runs are found once in column-major order (COCO's) and grouped by label.

    Args:
        label_image: ``(H, W)`` integer label image, 0 = background.

    Returns:
        The label ids (ascending) and one RLE dict per id.
    """
    height, width = label_image.shape
    flat = np.asarray(label_image).T.ravel()
    total = flat.size
    if total == 0:
        return np.zeros(0, dtype=np.int64), []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [total]))
    values = flat[starts]
    keep = values > 0
    starts, ends, values = starts[keep], ends[keep], values[keep]
    order = np.argsort(values, kind="stable")  # stable: runs of a label stay in pixel order
    starts, ends, values = starts[order], ends[order], values[order]
    ids, first = np.unique(values, return_index=True)
    bounds = np.append(first, values.size)
    rles = []
    for index in range(ids.size):
        run_starts = starts[bounds[index] : bounds[index + 1]]
        run_ends = ends[bounds[index] : bounds[index + 1]]
        gaps = run_starts - np.concatenate(([0], run_ends[:-1]))
        counts = np.stack([gaps, run_ends - run_starts], axis=1).ravel().tolist()
        if run_ends[-1] < total:
            counts.append(int(total - run_ends[-1]))
        uncompressed = {"counts": counts, "size": [height, width]}
        rles.append(_compress(mask_api.frPyObjects(uncompressed, height, width)))
    return ids.astype(np.int64), rles


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """Compressed COCO RLE of a stack of boolean masks.

    Args:
        masks: ``(N, H, W)`` boolean masks.

    Returns:
        One RLE dict per mask.
    """
    if len(masks) == 0:
        return []
    fortran = np.asfortranarray(np.transpose(masks, (1, 2, 0)).astype(np.uint8))
    return [_compress(rle) for rle in mask_api.encode(fortran)]


@dataclass
class CocoImageRecord:
    """The true and predicted objects of one image, as RLE.

    Attributes:
        height: image height.
        width: image width.
        true_rles: RLE of each true object.
        pred_rles: RLE of each predicted object.
        pred_scores: confidence of each predicted object.
        true_categories: category id of each true object (all 1 when class-agnostic).
        pred_categories: category id of each predicted object.
    """

    height: int
    width: int
    true_rles: list[dict[str, Any]]
    pred_rles: list[dict[str, Any]]
    pred_scores: list[float]
    true_categories: list[int] = field(default_factory=list)
    pred_categories: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.true_categories:
            self.true_categories = [1] * len(self.true_rles)
        if not self.pred_categories:
            self.pred_categories = [1] * len(self.pred_rles)


def _datasets(records: list[CocoImageRecord]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """COCO ground-truth dataset dict and detection result list for the records."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    categories: set[int] = set()
    for image_id, record in enumerate(records, start=1):
        images.append({"id": image_id, "height": record.height, "width": record.width})
        for rle, category in zip(record.true_rles, record.true_categories):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(category),
                    "segmentation": rle,
                    "area": float(mask_api.area(rle)),
                    "bbox": [float(v) for v in mask_api.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
            categories.add(int(category))
        for rle, score, category in zip(
            record.pred_rles, record.pred_scores, record.pred_categories
        ):
            detections.append(
                {
                    "image_id": image_id,
                    "category_id": int(category),
                    "segmentation": rle,
                    "score": float(score),
                }
            )
            categories.add(int(category))
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": str(c)} for c in sorted(categories)],
    }
    return dataset, detections


def summarize_precision(
    precision: np.ndarray, iou_thresholds: np.ndarray, area_labels: list[str]
) -> dict[str, float | None]:
    """AP numbers from COCO's accumulated ``precision`` array at the largest maxDets.

    Reading the array directly (instead of ``summarize()``) keeps the numbers right when
    maxDets is not COCO's ``[1, 10, 100]``.

    Args:
        precision: ``(T, R, K, A, M)`` precision of COCOeval's ``eval["precision"]``.
        iou_thresholds: ``(T,)`` IoU thresholds.
        area_labels: area range names, ``"all"`` first.

    Returns:
        ``AP``, ``AP50``, ``AP75``, ``AP_small``, ``AP_medium``, ``AP_large``; None where COCO
        says -1 (nothing to evaluate).
    """

    def mean_valid(values: np.ndarray) -> float | None:
        valid = values[values > -1]
        return float(np.mean(valid)) if valid.size else None

    last = precision[..., -1]
    all_areas = last[:, :, :, area_labels.index("all")]
    result = {
        "AP": mean_valid(all_areas),
        "AP50": mean_valid(all_areas[np.isclose(iou_thresholds, 0.5)]),
        "AP75": mean_valid(all_areas[np.isclose(iou_thresholds, 0.75)]),
    }
    for key, label in _AREA_KEYS.items():
        result[key] = mean_valid(last[:, :, :, area_labels.index(label)])
    return result


def coco_mask_ap(
    records: list[CocoImageRecord], *, max_detections: int | None = None
) -> CocoResult:
    """COCO mask AP over a split with faster-coco-eval.

    Args:
        records: one record per image.
        max_detections: detections kept per image; None raises COCO's 100 to the most objects
            (true or predicted) any image holds, so that no object is cut.

    Returns:
        ``AP``, ``AP50``, ``AP75``, ``AP_small``, ``AP_medium``, ``AP_large`` (None when there is
        nothing to evaluate), ``max_detections`` and ``max_detections_raised``.
    """
    most_objects = max((max(len(r.true_rles), len(r.pred_rles)) for r in records), default=0)
    limit = max_detections if max_detections is not None else max(COCO_MAX_DETECTIONS, most_objects)
    result: CocoResult = {
        "AP": None,
        "AP50": None,
        "AP75": None,
        "AP_small": None,
        "AP_medium": None,
        "AP_large": None,
        "max_detections": int(limit),
        "max_detections_raised": bool(limit > COCO_MAX_DETECTIONS),
    }
    dataset, detections = _datasets(records)
    if not dataset["annotations"]:
        return result  # COCO AP is undefined without a single true object

    def silent(*args: object, **kwargs: object) -> None:
        return None

    coco_true = COCO(dataset, print_function=silent)
    coco_pred = coco_true.loadRes(detections)
    evaluator = COCOeval_faster(coco_true, coco_pred, iouType="segm", print_function=silent)
    evaluator.params.maxDets = [d for d in (1, 10) if d < limit] + [int(limit)]
    evaluator.evaluate()
    evaluator.accumulate()
    params = evaluator.params
    summary = summarize_precision(
        np.asarray(evaluator.eval["precision"]), np.asarray(params.iouThrs), list(params.areaRngLbl)
    )
    for key in ("AP", "AP50", "AP75", *_AREA_KEYS):
        result[key] = summary.get(key)  # type: ignore[literal-required]
    return result


def coco_results(
    label_image: np.ndarray,
    scores: np.ndarray,
    categories: np.ndarray,
    *,
    image_id: int,
    first_annotation_id: int = 1,
) -> list[dict[str, Any]]:
    """COCO result annotations (RLE ``segmentation``, ``bbox``, ``area``, ``score``).

    Args:
        label_image: ``(H, W)`` objects ``1..N``.
        scores: ``(N,)`` score of object ``k`` at ``k - 1``.
        categories: ``(N,)`` 1-based category of each object.
        image_id: the COCO image id.
        first_annotation_id: id of the first annotation.

    Returns:
        One dict per object, in label order.
    """
    ids, rles = encode_label_image(label_image)
    entries = []
    for offset, (label, rle) in enumerate(zip(ids.tolist(), rles, strict=True)):
        entries.append(
            {
                "id": first_annotation_id + offset,
                "image_id": image_id,
                "category_id": int(categories[label - 1]),
                "segmentation": rle,
                "area": float(mask_api.area(rle)),
                "bbox": [float(v) for v in mask_api.toBbox(rle)],
                "score": float(scores[label - 1]),
                "iscrowd": 0,
            }
        )
    return entries
