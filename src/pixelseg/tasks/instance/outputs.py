"""Mask R-CNN outputs as instance label images and predictions, metrics and tuned thresholds.

A detector returns overlapping, scored soft masks; counting and the label-image outputs need
one object per pixel. :func:`detection_label_image` resolves overlaps by score (via
:func:`~pixelseg.models.mask_rcnn.predictions_to_label_image`) and says which detection each
label came from, so scores and classes follow the objects into metrics and COCO JSON
(:func:`detections_prediction` makes the typed prediction).
:func:`tune_thresholds` picks the score and mask thresholds on the validation split.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pixelseg.metrics.instance import InstanceEvaluator
from pixelseg.metrics.results import InstanceResult
from pixelseg.models.mask_rcnn import predictions_to_label_image
from pixelseg.postprocess.masks import instance_prediction
from pixelseg.structures import InstancePrediction

#: Grids searched by :func:`tune_thresholds` (score, mask probability).
SCORE_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MASK_GRID = (0.3, 0.4, 0.5, 0.6, 0.7)
DEFAULT_SCORE_THRESHOLD = 0.5
DEFAULT_MASK_THRESHOLD = 0.5


@dataclass(frozen=True)
class Detections:
    """One image's detections as NumPy arrays (on the CPU).

    Attributes:
        probs: ``(K, H, W)`` float32 mask probabilities.
        scores: ``(K,)`` float32 detection scores.
        labels: ``(K,)`` int64 1-based classes.
    """

    probs: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_output(cls, output: dict[str, torch.Tensor]) -> Detections:
        """From one eval output of the model: ``masks`` ``(K, 1, H, W)``, ``scores``, ``labels``."""
        masks = output["masks"].detach().float().cpu()
        if masks.dim() == 4:
            masks = masks[:, 0]
        return cls(
            probs=masks.numpy(),
            scores=output["scores"].detach().float().cpu().numpy(),
            labels=output["labels"].detach().cpu().numpy().astype(np.int64),
        )

    def above(self, score_threshold: float) -> Detections:
        """Only the detections scoring at least ``score_threshold``."""
        keep = self.scores >= score_threshold
        return Detections(self.probs[keep], self.scores[keep], self.labels[keep])


def detection_label_image(
    detections: Detections, *, score_threshold: float, mask_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Instance label image of one image's detections, overlaps resolved by score.

    Args:
        detections: the image's detections.
        score_threshold: minimum detection score.
        mask_threshold: minimum mask probability.

    Returns:
        ``(H, W)`` int32 label image with objects ``1..N`` (descending score) and ``(N,)``
        int64: the detection index each label came from.
    """
    output = {
        "masks": torch.from_numpy(detections.probs),
        "scores": torch.from_numpy(detections.scores),
    }
    label_image = predictions_to_label_image(
        output, score_threshold=score_threshold, mask_threshold=mask_threshold
    )
    count = int(label_image.max())
    sources = np.zeros(count, dtype=np.int64)
    if count == 0:
        return label_image, sources
    # One pixel per label is enough: the owner there is the best-scoring detection covering it.
    flat = label_image.ravel()
    _, first = np.unique(flat, return_index=True)
    first = first[1:] if flat[first[0]] == 0 else first
    kept = np.flatnonzero(detections.scores >= score_threshold)
    kept = kept[np.argsort(-detections.scores[kept], kind="stable")]
    ys, xs = np.unravel_index(first, label_image.shape)
    for y, x in zip(np.atleast_1d(ys).tolist(), np.atleast_1d(xs).tolist(), strict=True):
        covering = detections.probs[kept, y, x] >= mask_threshold
        sources[int(label_image[y, x]) - 1] = kept[int(np.argmax(covering))]
    return label_image, sources


def detections_prediction(
    detections: Detections, *, score_threshold: float, mask_threshold: float
) -> InstancePrediction:
    """The typed prediction of one image's detections: label image (overlaps resolved by
    score), each object's score, class and box, and the raw detections for COCO mask AP."""
    label_image, sources = detection_label_image(
        detections, score_threshold=score_threshold, mask_threshold=mask_threshold
    )
    return instance_prediction(
        label_image,
        detections.scores[sources],
        detections.labels[sources],
        detections=detections,
    )


def _tuning_score(result: InstanceResult) -> tuple[float, float]:
    ap50 = result["matching_ap_pooled"]["ap50"]
    mae = result["counting"]["count_mae"]
    return (float(ap50 or 0.0), -float(mae if mae is not None else np.inf))


def tune_thresholds(
    images: Iterable[tuple[Sequence[Detections], Sequence[np.ndarray]]],
    *,
    score_grid: Sequence[float] = SCORE_GRID,
    mask_grid: Sequence[float] = MASK_GRID,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Choose the score and mask thresholds that count objects best on a split.

    The criterion is the pooled matching AP at IoU 0.5, ``TP / (TP + FP + FN)`` summed over the
    split: it punishes missed objects (FN), spurious ones (FP) and merged or split ones (both),
    which is what a count needs; ties go to the lower count MAE, then to the grid's order.

    Args:
        images: per batch, the detections and ``(N, H, W)`` true mask stacks of its images.
        score_grid: detection score thresholds to try.
        mask_grid: mask probability thresholds to try.
        progress: called once per batch.

    Returns:
        ``score_threshold``, ``mask_threshold``, ``criterion``, the chosen pair's
        ``matching_ap50`` and ``count_mae``, and ``grid`` (every pair's two numbers).
    """
    pairs = [(s, m) for s in score_grid for m in mask_grid]
    evaluators = {pair: InstanceEvaluator(compute_coco=False) for pair in pairs}
    for batch_detections, batch_truths in images:
        for detections, truth in zip(batch_detections, batch_truths, strict=True):
            # Dropping what no grid point keeps makes each of the many label images cheaper.
            detections = detections.above(min(score_grid))
            for (score, mask), evaluator in evaluators.items():
                label_image, _ = detection_label_image(
                    detections, score_threshold=score, mask_threshold=mask
                )
                evaluator.update(label_image, truth)
        if progress is not None:
            progress()
    results = {pair: evaluator.compute() for pair, evaluator in evaluators.items()}
    best = max(pairs, key=lambda pair: _tuning_score(results[pair]))
    grid = [
        {
            "score_threshold": s,
            "mask_threshold": m,
            "matching_ap50": results[(s, m)]["matching_ap_pooled"]["ap50"],
            "count_mae": results[(s, m)]["counting"]["count_mae"],
        }
        for s, m in pairs
    ]
    return {
        "score_threshold": best[0],
        "mask_threshold": best[1],
        "criterion": "max pooled matching AP at IoU 0.5 on val (ties: lower count MAE)",
        "matching_ap50": results[best]["matching_ap_pooled"]["ap50"],
        "count_mae": results[best]["counting"]["count_mae"],
        "grid": grid,
    }


class InstanceMetrics:
    """COCO mask AP on the raw detections; matching AP and counting on the label image.

    Args:
        score_threshold: score a detection needs to enter the label image.
        mask_threshold: mask probability a pixel needs to belong to a detection (both views).
    """

    def __init__(
        self,
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        mask_threshold: float = DEFAULT_MASK_THRESHOLD,
    ) -> None:
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold
        self.coco = InstanceEvaluator(compute_coco=True)
        self.matching = InstanceEvaluator(compute_coco=False)

    def reset(self) -> None:
        """Forget every image seen so far."""
        self.coco.reset()
        self.matching.reset()

    def sync(self, indices: list[int]) -> None:
        """Gather the DDP processes' images in split order (``indices``: see
        :meth:`~pixelseg.metrics.instance.InstanceEvaluator.sync`)."""
        self.coco.sync(indices)
        self.matching.sync(indices)

    def prediction(self, detections: Detections) -> InstancePrediction:
        """The typed prediction of ``detections`` under this accumulator's thresholds."""
        return detections_prediction(
            detections, score_threshold=self.score_threshold, mask_threshold=self.mask_threshold
        )

    def update(
        self,
        prediction: InstancePrediction,
        true_masks: np.ndarray,
        true_labels: np.ndarray,
        image_id: Hashable | None = None,
    ) -> None:
        """Add one image: its prediction and ``(N, H, W)`` bool true masks with 1-based labels.

        COCO mask AP reads ``prediction.detections`` (every detection, overlapping); matching
        AP and counting read ``prediction.label_image``.
        """
        detections: Detections = prediction.detections
        self.coco.update(
            detections.probs >= self.mask_threshold,
            true_masks,
            scores=detections.scores,
            image_id=image_id,
            pred_categories=detections.labels,
            true_categories=true_labels,
        )
        self.matching.update(prediction.label_image, true_masks, image_id=image_id)

    def compute(self) -> InstanceResult:
        """:meth:`InstanceEvaluator.compute` of the label images plus ``coco`` of the raw masks.

        Flat keys for the epoch log and early stopping: ``mask_ap`` (COCO AP@[.5:.95], 0.0 when
        undefined), ``mask_ap50``, ``matching_ap50`` and ``count_mae``.
        """
        result = self.matching.compute()
        coco = self.coco.compute()["coco"]
        result["coco"] = coco
        result["mask_ap"] = float(coco["AP"] or 0.0)
        result["mask_ap50"] = float(coco["AP50"] or 0.0)
        result["matching_ap50"] = result["matching_ap_pooled"]["ap50"]
        result["count_mae"] = result["counting"]["count_mae"]
        result["thresholds"] = {"score": self.score_threshold, "mask": self.mask_threshold}
        return result
