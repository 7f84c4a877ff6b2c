"""Instance metrics over a split: COCO mask AP, matching AP (pooled and per image), counting.

:class:`InstanceEvaluator` follows the ``reset/update/compute`` protocol of the confusion matrix.
Each ``update`` reduces an image to a few numbers (TP/FP/FN per threshold, counts, merges,
splits) and RLE-encoded masks for COCO, so memory does not grow with image size.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pixelseg.metrics.bootstrap import pooled_ap50_interval
from pixelseg.metrics.coco import CocoImageRecord, coco_mask_ap, encode_label_image, encode_masks
from pixelseg.metrics.matching import (
    MATCHING_THRESHOLDS,
    Overlap,
    label_image_overlap,
    label_image_to_sparse,
    mask_stack_to_sparse,
    match_counts,
    matching_scores,
    matching_summary,
    merges_and_splits,
    sparse_overlap,
)
from pixelseg.metrics.results import CountingResult, InstanceResult

#: A label image ``(H, W)`` int, a mask stack ``(N, H, W)`` bool, or a list of ``(H, W)`` masks.
Instances = np.ndarray | Sequence[np.ndarray]
#: Per-object values: keyed by label id (label images) or in mask order (mask stacks).
PerObject = Mapping[int, float] | Sequence[float] | np.ndarray


@dataclass(frozen=True)
class _ImageResult:
    """What one image contributes to the split's metrics."""

    image_id: Hashable | None
    true_count: int
    pred_count: int
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    merges: int
    splits: int


def _as_instances(value: Instances, shape: tuple[int, ...] | None) -> np.ndarray:
    """A 2-D label image as is, or a ``(N, H, W)`` bool stack from a list or 3-D array."""
    if isinstance(value, np.ndarray) and value.ndim == 2:
        return value
    if isinstance(value, np.ndarray) and value.ndim == 3:
        return value.astype(bool, copy=False)
    masks = list(value)
    if masks:
        return np.stack([np.asarray(m, dtype=bool) for m in masks])
    if shape is None:
        raise ValueError("cannot infer the image size from two empty mask lists")
    return np.zeros((0, *shape[-2:]), dtype=bool)


def _shape_hint(value: Instances) -> tuple[int, ...] | None:
    """Image size of instances in either form, None for an empty mask list."""
    if isinstance(value, np.ndarray):
        return tuple(value.shape)
    return tuple(np.shape(value[0])) if len(value) else None


def _object_values(
    values: PerObject | None, ids: np.ndarray | None, count: int, default: float
) -> list[float]:
    """Values per object, in the order the objects were encoded."""
    if values is None:
        return [default] * count
    if isinstance(values, Mapping):
        if ids is None:
            raise ValueError("per-object values for a mask stack must be a sequence, not a dict")
        return [float(values.get(int(i), default)) for i in ids]
    listed = [float(v) for v in values]
    if len(listed) != count:
        raise ValueError(f"got {len(listed)} per-object values for {count} objects")
    return listed


class InstanceEvaluator:
    """Accumulates instance predictions of a split and computes every instance metric.

    Args:
        thresholds: IoU thresholds of the matching AP (0.50:0.05:0.95 by default).
        compute_coco: also compute COCO mask AP (needs the RLE of every object).
        max_detections: COCO detections per image; None raises COCO's 100 to the most objects
            any image holds.
    """

    def __init__(
        self,
        *,
        thresholds: Sequence[float] = MATCHING_THRESHOLDS,
        compute_coco: bool = True,
        max_detections: int | None = None,
    ) -> None:
        self.thresholds = tuple(float(t) for t in thresholds)
        self.compute_coco = compute_coco
        self.max_detections = max_detections
        self._images: list[_ImageResult] = []
        self._coco_records: list[CocoImageRecord] = []

    def reset(self) -> None:
        """Forget every image seen so far."""
        self._images = []
        self._coco_records = []

    def update(
        self,
        pred_labels: Instances,
        true_labels: Instances,
        scores: PerObject | None = None,
        image_id: Hashable | None = None,
        *,
        pred_categories: PerObject | None = None,
        true_categories: PerObject | None = None,
    ) -> None:
        """Add one image.

        Args:
            pred_labels: predicted instances: ``(H, W)`` int label image (0 = background), or
                ``(N, H, W)`` / list of ``(H, W)`` boolean masks (may overlap).
            true_labels: true instances, in either form.
            scores: confidence per predicted object: a dict keyed by label id for a label
                image, or a sequence in mask order; None means 1.0 each (COCO AP then ranks
                objects in the order given).
            image_id: name of the image in the per-image table; defaults to its index.
            pred_categories: category id per predicted object (COCO AP per class); default 1.
            true_categories: category id per true object; default 1.
        """
        pred = _as_instances(pred_labels, _shape_hint(true_labels))
        true = _as_instances(true_labels, pred.shape)
        pred_ids: np.ndarray | None = None
        true_ids: np.ndarray | None = None
        overlap: Overlap
        if pred.ndim == 2 and true.ndim == 2:
            overlap, pred_ids, true_ids = label_image_overlap(pred, true)
        else:
            if pred.ndim == 2:
                pred_sparse, pred_ids = label_image_to_sparse(pred)
            else:
                pred_sparse = mask_stack_to_sparse(pred)
            if true.ndim == 2:
                true_sparse, true_ids = label_image_to_sparse(true)
            else:
                true_sparse = mask_stack_to_sparse(true)
            if pred_sparse.shape[1] != true_sparse.shape[1]:
                raise ValueError(f"prediction {pred.shape} and truth {true.shape} differ in size")
            overlap = sparse_overlap(pred_sparse, true_sparse)
        tp, fp, fn = match_counts(overlap.iou, self.thresholds)
        merges, splits = merges_and_splits(overlap)
        num_pred, num_true = overlap.intersection.shape
        self._images.append(
            _ImageResult(
                image_id=image_id,
                true_count=num_true,
                pred_count=num_pred,
                tp=tp,
                fp=fp,
                fn=fn,
                merges=merges,
                splits=splits,
            )
        )
        if self.compute_coco:
            pred_rles = encode_label_image(pred)[1] if pred.ndim == 2 else encode_masks(pred)
            true_rles = encode_label_image(true)[1] if true.ndim == 2 else encode_masks(true)
            self._coco_records.append(
                CocoImageRecord(
                    height=int(pred.shape[-2]),
                    width=int(pred.shape[-1]),
                    true_rles=true_rles,
                    pred_rles=pred_rles,
                    pred_scores=_object_values(scores, pred_ids, num_pred, 1.0),
                    true_categories=[
                        int(v) for v in _object_values(true_categories, true_ids, num_true, 1)
                    ],
                    pred_categories=[
                        int(v) for v in _object_values(pred_categories, pred_ids, num_pred, 1)
                    ],
                )
            )

    def sync(self, indices: Sequence[int]) -> None:
        """Gather every process's images, in split order, on every process (DDP evaluation).

        Args:
            indices: the place in the split of each image this process added, in order.

        Raises:
            ValueError: ``indices`` does not name every image added.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        if len(indices) != len(self._images):
            raise ValueError(f"{len(indices)} indices for {len(self._images)} images")
        coco = self._coco_records if self.compute_coco else [None] * len(self._images)
        mine = list(zip(indices, self._images, coco, strict=True))
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, mine)
        merged = sorted((item for part in gathered for item in part), key=lambda t: t[0])
        self._images = [image for _, image, _ in merged]
        if self.compute_coco:
            self._coco_records = [record for _, _, record in merged]

    def compute(self) -> InstanceResult:
        """Metrics over every image added since the last reset.

        Returns:
            ``num_images``; ``matching_ap_pooled`` (TP, FP, FN summed over the split, then
            ``TP / (TP + FP + FN)``, StarDist's way) and ``matching_ap_per_image`` (the mean of
            per-image scores, Kaggle DSB2018's way), each with ``per_threshold``, ``ap50`` and
            ``mean``; ``counting`` (count MAE, mean relative count error over images with
            objects, merges, splits, per-image counts); ``coco`` (AP, AP50, AP75,
            AP_small/medium/large, max_detections, max_detections_raised) when enabled.
            An image with neither true nor predicted objects scores 1.0 per image.
        """
        result: InstanceResult = {
            "num_images": len(self._images),
            "matching_thresholds": list(self.thresholds),
        }
        if self._images:
            tp = np.stack([r.tp for r in self._images])
            fp = np.stack([r.fp for r in self._images])
            fn = np.stack([r.fn for r in self._images])
            pooled = matching_scores(tp.sum(axis=0), fp.sum(axis=0), fn.sum(axis=0))
            per_image = matching_scores(tp, fp, fn).mean(axis=0)
            result["matching_ap_pooled"] = {
                **matching_summary(pooled, self.thresholds),
                "tp": tp.sum(axis=0).tolist(),
                "fp": fp.sum(axis=0).tolist(),
                "fn": fn.sum(axis=0).tolist(),
            }
            result["matching_ap_per_image"] = matching_summary(per_image, self.thresholds)
            near = [i for i, t in enumerate(self.thresholds) if abs(t - 0.5) < 1e-9]
            if near:  # how far the pooled AP50 would move on other images
                at = near[0]
                counts = np.stack([tp[:, at], fp[:, at], fn[:, at]], axis=1)
                result["intervals"] = pooled_ap50_interval(counts)
        else:
            result["matching_ap_pooled"] = {"per_threshold": {}, "ap50": None, "mean": None}
            result["matching_ap_per_image"] = {"per_threshold": {}, "ap50": None, "mean": None}
        result["counting"] = self._counting()
        if self.compute_coco:
            result["coco"] = coco_mask_ap(self._coco_records, max_detections=self.max_detections)
        return result

    def _counting(self) -> CountingResult:
        """Count errors, merges and splits over the split."""
        true_counts = np.array([r.true_count for r in self._images], dtype=np.float64)
        pred_counts = np.array([r.pred_count for r in self._images], dtype=np.float64)
        errors = np.abs(pred_counts - true_counts)
        with_objects = true_counts > 0
        return {
            "count_mae": float(errors.mean()) if errors.size else None,
            "count_mean_relative_error": (
                float((errors[with_objects] / true_counts[with_objects]).mean())
                if with_objects.any()
                else None
            ),
            "true_objects": int(true_counts.sum()),
            "pred_objects": int(pred_counts.sum()),
            "merges": sum(r.merges for r in self._images),
            "splits": sum(r.splits for r in self._images),
            "per_image": [
                {
                    "image_id": index if r.image_id is None else r.image_id,
                    "true_count": r.true_count,
                    "pred_count": r.pred_count,
                    "merges": r.merges,
                    "splits": r.splits,
                }
                for index, r in enumerate(self._images)
            ],
        }
