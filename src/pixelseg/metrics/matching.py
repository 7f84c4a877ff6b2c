"""One-to-one matching of predicted and true instances by IoU, merges and splits.

The overlap of every predicted object with every true object comes from one joint histogram of
the two label images (``np.bincount`` on ``pred * K + true``), or from a sparse product for
stacks of possibly overlapping boolean masks, so images with hundreds of objects stay cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
from scipy.optimize import linear_sum_assignment

from pixelseg.metrics.results import MatchingSummary

#: IoU thresholds 0.50:0.05:0.95 of the nuclei benchmarks (DSB2018, StarDist).
MATCHING_THRESHOLDS: tuple[float, ...] = tuple(
    float(t) for t in np.round(np.arange(10) * 0.05 + 0.5, 2)
)

#: A merge / split needs this fraction of an object inside the other one.
COVERAGE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Overlap:
    """Pairwise overlap of the predicted and true objects of one image.

    Attributes:
        intersection: ``(P, T)`` pixel counts shared by predicted object ``p`` and true object
            ``t``.
        pred_areas: ``(P,)`` pixel count of each predicted object.
        true_areas: ``(T,)`` pixel count of each true object.
    """

    intersection: np.ndarray
    pred_areas: np.ndarray
    true_areas: np.ndarray

    @property
    def iou(self) -> np.ndarray:
        """``(P, T)`` intersection over union (0 where neither object has pixels)."""
        union = self.pred_areas[:, None] + self.true_areas[None, :] - self.intersection
        return np.divide(
            self.intersection,
            union,
            out=np.zeros(self.intersection.shape, dtype=np.float64),
            where=union > 0,
        )


def _sequential(label_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to ``0..K`` (0 stays background); returns the mapped image and the old ids.

    Non-negative integer labels go through a lookup table (linear time: the sort of
    ``np.unique`` was 94 % of a threshold search's scoring); others through ``np.unique``.
    """
    if label_image.dtype.kind in "biu" and label_image.size:
        flat = label_image.ravel().astype(np.intp, copy=False)
        low, high = int(flat.min()), int(flat.max())
        if low >= 0 and high <= 4 * flat.size + 65536:  # the table stays about image-sized
            present = np.bincount(flat, minlength=high + 1).astype(bool)
            ids = np.flatnonzero(present[1:]) + 1
            table = np.zeros(high + 1, dtype=np.intp)
            table[ids] = np.arange(1, ids.size + 1)
            return table[flat].reshape(label_image.shape), ids.astype(label_image.dtype)
    ids, inverse = np.unique(label_image, return_inverse=True)
    if ids.size and ids[0] == 0:
        return inverse.reshape(label_image.shape), ids[1:]
    # No background pixel: shift so that label ids[0] becomes 1, not 0.
    return inverse.reshape(label_image.shape) + 1, ids


def label_image_overlap(
    pred_labels: np.ndarray, true_labels: np.ndarray
) -> tuple[Overlap, np.ndarray, np.ndarray]:
    """Overlap of two instance label images through one joint histogram.

    Args:
        pred_labels: ``(H, W)`` integer label image, 0 = background, any positive ids.
        true_labels: ``(H, W)`` integer label image of the same shape.

    Returns:
        The overlap, and the predicted and true label ids (ascending) its rows and columns
        stand for.
    """
    if pred_labels.shape != true_labels.shape:
        raise ValueError(
            f"label images differ in shape: {pred_labels.shape} vs {true_labels.shape}"
        )
    pred_seq, pred_ids = _sequential(np.asarray(pred_labels))
    true_seq, true_ids = _sequential(np.asarray(true_labels))
    num_true = true_ids.size + 1
    joint = np.bincount(
        (pred_seq.ravel().astype(np.int64) * num_true + true_seq.ravel()),
        minlength=(pred_ids.size + 1) * num_true,
    ).reshape(pred_ids.size + 1, num_true)
    overlap = Overlap(
        intersection=joint[1:, 1:],
        pred_areas=joint[1:, :].sum(axis=1),
        true_areas=joint[:, 1:].sum(axis=0),
    )
    return overlap, pred_ids, true_ids


def label_image_to_sparse(label_image: np.ndarray) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """One sparse row of pixels per object of a label image (no dense per-object masks).

    Args:
        label_image: ``(H, W)`` integer label image, 0 = background.

    Returns:
        ``(K, H*W)`` sparse 0/1 matrix and the label ids (ascending) of its rows.
    """
    seq, ids = _sequential(np.asarray(label_image))
    flat = seq.ravel()
    pixels = np.flatnonzero(flat)
    matrix = scipy.sparse.csr_matrix(
        (np.ones(pixels.size, dtype=np.int64), (flat[pixels] - 1, pixels)),
        shape=(ids.size, flat.size),
    )
    return matrix, ids


def mask_stack_to_sparse(masks: np.ndarray) -> scipy.sparse.csr_matrix:
    """``(N, H*W)`` sparse 0/1 matrix of a ``(N, H, W)`` boolean mask stack."""
    pixels = int(np.prod(masks.shape[1:]))  # not -1: an empty stack has no size to infer
    return scipy.sparse.csr_matrix(masks.reshape(len(masks), pixels).astype(np.int64))


def sparse_overlap(pred: scipy.sparse.csr_matrix, true: scipy.sparse.csr_matrix) -> Overlap:
    """Overlap of objects given as sparse pixel rows (masks may overlap each other).

    Args:
        pred: ``(P, H*W)`` sparse 0/1 rows of the predicted objects.
        true: ``(T, H*W)`` sparse 0/1 rows of the true objects.

    Returns:
        The overlap, rows and columns in the order of the inputs.
    """
    intersection = np.asarray((pred @ true.T).todense(), dtype=np.int64)
    return Overlap(
        intersection=intersection.reshape(pred.shape[0], true.shape[0]),
        pred_areas=np.asarray(pred.sum(axis=1), dtype=np.int64).ravel(),
        true_areas=np.asarray(true.sum(axis=1), dtype=np.int64).ravel(),
    )


def match_counts(
    iou: np.ndarray, thresholds: tuple[float, ...] = MATCHING_THRESHOLDS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives at each IoU threshold.

    Matching is one-to-one and optimal (Hungarian, ``linear_sum_assignment``) as in StarDist:
    the cost counts pairs with ``IoU >= threshold`` and breaks ties by IoU.

    Args:
        iou: ``(P, T)`` IoU of predicted vs true objects.
        thresholds: IoU thresholds.

    Returns:
        ``tp``, ``fp``, ``fn``, each ``(len(thresholds),)`` int64.
    """
    num_pred, num_true = iou.shape
    tp = np.zeros(len(thresholds), dtype=np.int64)
    num_matchable = min(num_pred, num_true)
    if num_matchable > 0:
        for index, threshold in enumerate(thresholds):
            hits = iou >= threshold
            if not hits.any():
                continue
            costs = -hits.astype(np.float64) - iou / (2 * num_matchable)
            rows, cols = linear_sum_assignment(costs)
            tp[index] = int(np.count_nonzero(hits[rows, cols]))
    return tp, num_pred - tp, num_true - tp


def merge_split_flags(overlap: Overlap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which objects of one image take part in a merge or a split (see
    :func:`merges_and_splits` for the rule).

    Returns:
        ``(merging, merged, split)``: ``(P,)`` predictions that cover two or more true
        objects, ``(T,)`` true objects covered by such a prediction, ``(T,)`` true objects
        split between two or more predictions.
    """
    inter = overlap.intersection.astype(np.float64)
    true_covered = inter >= COVERAGE_THRESHOLD * overlap.true_areas[None, :]
    true_covered &= overlap.intersection > 0
    pred_inside = inter >= COVERAGE_THRESHOLD * overlap.pred_areas[:, None]
    pred_inside &= overlap.intersection > 0
    merging = true_covered.sum(axis=1) >= 2
    merged = true_covered[merging].any(axis=0)
    split = pred_inside.sum(axis=0) >= 2
    return merging, merged, split


def merges_and_splits(overlap: Overlap) -> tuple[int, int]:
    """Count merges and splits of one image.

    A merge is a predicted object that covers at least 50 % of each of two or more true objects.
    A split is the reverse: a true object that holds at least 50 % of each of two or more
    predicted objects (with non-overlapping predictions, "50 % of the true object covered by
    each" could never happen twice, so the fraction is taken of each prediction).

    Args:
        overlap: Overlap of the image's predicted and true objects.

    Returns:
        ``(merges, splits)``: the number of merging predictions and of split true objects.
    """
    merging, _, split = merge_split_flags(overlap)
    return int(np.count_nonzero(merging)), int(np.count_nonzero(split))


def matching_scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """``TP / (TP + FP + FN)`` per threshold; 1.0 where there was nothing to find nor found.

    Args:
        tp: ``(T,)`` true positives.
        fp: ``(T,)`` false positives.
        fn: ``(T,)`` false negatives.

    Returns:
        ``(T,)`` float64 scores.
    """
    denominator = (tp + fp + fn).astype(np.float64)
    return np.divide(
        tp, denominator, out=np.ones(denominator.shape, dtype=np.float64), where=denominator > 0
    )


def matching_summary(scores: np.ndarray, thresholds: tuple[float, ...]) -> MatchingSummary:
    """Per-threshold scores plus AP@0.5 and their mean, as reported.

    Args:
        scores: ``(T,)`` matching AP per threshold.
        thresholds: the thresholds the scores belong to.

    Returns:
        ``{"per_threshold": {"0.50": ...}, "ap50": ..., "mean": ...}``.
    """
    per_threshold = {f"{t:.2f}": float(s) for t, s in zip(thresholds, scores)}
    return {
        "per_threshold": per_threshold,
        "ap50": per_threshold.get("0.50"),
        "mean": float(np.mean(scores)) if len(scores) else None,
    }


def pooled_ap50(
    pred_label_images: Iterable[np.ndarray], true_label_images: Iterable[np.ndarray]
) -> dict[str, Any]:
    """Matching AP at IoU 0.5 pooled over images (StarDist's way), with its counts.

    Used to pick post-processing thresholds on a validation split.

    Returns:
        ``{"tp", "fp", "fn", "matching_ap50_pooled"}``.
    """
    counts = np.zeros(3, dtype=np.int64)
    for pred, truth in zip(pred_label_images, true_label_images):
        overlap, _, _ = label_image_overlap(pred, truth)
        tp, fp, fn = match_counts(overlap.iou, (0.5,))
        counts += (tp[0], fp[0], fn[0])
    score = float(matching_scores(counts[:1], counts[1:2], counts[2:])[0])
    return {
        "tp": int(counts[0]),
        "fp": int(counts[1]),
        "fn": int(counts[2]),
        "matching_ap50_pooled": score,
    }
