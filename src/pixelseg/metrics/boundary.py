"""Boundary F1 (BF score, Csurka et al. 2013), as in the SegNet evaluation.

For each image and class, the boundary pixels of the predicted and the true class regions are
matched within a tolerance of 0.75 % of the image diagonal: precision is the fraction of
predicted boundary pixels within the tolerance of a true one, recall the converse, and the
image's score is their F1. A class's score is the mean over the images in which it has a
boundary in the truth or the prediction (an image where only one side has it scores 0), and the
mean BF is over classes that were scored at least once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from pixelseg.metrics.confusion import all_reduce_sum, predictions_to_labels
from pixelseg.metrics.results import BoundaryResult

#: Matching distance as a fraction of the image diagonal (SegNet's evaluation).
DEFAULT_TOLERANCE = 0.0075


def boundary_map(label_map: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another valid label (negative labels are invalid).

    Borders against invalid pixels and against the image edge are not boundaries, so ignored
    regions do not create edges in either the truth or the prediction.

    Args:
        label_map: ``(H, W)`` int class indices, negative where invalid.

    Returns:
        ``(H, W)`` bool; both sides of an edge are marked.
    """
    edges = np.zeros(label_map.shape, dtype=bool)
    valid = label_map >= 0
    for axis in (0, 1):
        a = np.swapaxes(label_map, 0, axis)
        v = np.swapaxes(valid, 0, axis)
        e = np.swapaxes(edges, 0, axis)
        differ = (a[1:] != a[:-1]) & v[1:] & v[:-1]
        e[1:] |= differ
        e[:-1] |= differ
    return edges


class BoundaryF1:
    """Per-class and mean boundary F1, streaming over images.

    Shape:
        - preds: ``(N, H, W)`` int class indices or ``(N, C, H, W)`` scores.
        - target: ``(N, H, W)`` int class indices or ``ignore_index``.
        - valid: ``(N, H, W)`` bool or ``None``.

    Args:
        num_classes: Number of classes.
        ignore_index: Target value of pixels that never count (nor does the prediction there).
        class_names: Names for the per-class results (default ``"0"``, ``"1"``, ...).
        tolerance: Matching distance as a fraction of the image diagonal.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = (
            [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
        )
        self.tolerance = tolerance
        # Row 0: sum of per-image F1, row 1: number of images scored, per class.
        self.totals = torch.zeros(2, num_classes, dtype=torch.float64)

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.totals.zero_()

    def update(self, preds: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add a batch of images (computed on the CPU with scipy).

        Args:
            preds: ``(N, H, W)`` class indices or ``(N, C, H, W)`` scores.
            target: ``(N, H, W)`` class map.
            valid: ``(N, H, W)`` bool region mask, or ``None`` for all pixels.
        """
        labels = predictions_to_labels(preds, target).detach().cpu().numpy().astype(np.int64)
        truth = target.detach().cpu().numpy().astype(np.int64)
        invalid = truth == self.ignore_index
        if valid is not None:
            invalid |= ~valid.detach().cpu().numpy().astype(bool)
        truth[invalid] = -1
        labels[invalid] = -1
        for image_truth, image_pred in zip(truth, labels):
            self._add_image(image_pred, image_truth)

    def _add_image(self, pred: np.ndarray, truth: np.ndarray) -> None:
        height, width = truth.shape
        max_distance = self.tolerance * math.hypot(height, width)
        truth_edges = boundary_map(truth)
        pred_edges = boundary_map(pred)
        for c in range(self.num_classes):
            t = truth_edges & (truth == c)
            p = pred_edges & (pred == c)
            has_t, has_p = bool(t.any()), bool(p.any())
            if not (has_t or has_p):
                continue
            self.totals[1, c] += 1
            if not (has_t and has_p):
                continue
            # Every boundary pixel lies in the bounding box of both sets, so the distance
            # transforms on that crop are exact and much cheaper for small objects.
            rows = np.flatnonzero((t | p).any(1))
            cols = np.flatnonzero((t | p).any(0))
            crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            t, p = t[crop], p[crop]
            to_truth = ndimage.distance_transform_edt(~t)
            to_pred = ndimage.distance_transform_edt(~p)
            precision = float((to_truth[p] <= max_distance).mean())
            recall = float((to_pred[t] <= max_distance).mean())
            if precision + recall > 0:
                self.totals[0, c] += 2 * precision * recall / (precision + recall)

    def merge(self, other: BoundaryF1) -> None:
        """Add another accumulator's totals (same number of classes).

        Args:
            other: Accumulator to add.
        """
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.totals += other.totals

    def sync(self) -> None:
        """Sum the totals over all processes (a no-op without ``torch.distributed``)."""
        all_reduce_sum(self.totals)

    def compute(self) -> BoundaryResult:
        """Scores so far.

        Returns:
            ``boundary_f1`` (mean over scored classes, NaN if none),
            ``per_class_boundary_f1`` (name -> value, NaN for classes never scored) and
            ``boundary_tolerance`` (fraction of the diagonal).
        """
        sums, counts = self.totals
        scored = counts > 0
        per_class = torch.where(scored, sums / counts.clamp_min(1), torch.nan)
        mean = float(per_class[scored].mean()) if bool(scored.any()) else math.nan
        return {
            "boundary_f1": mean,
            "per_class_boundary_f1": dict(zip(self.class_names, per_class.tolist())),
            "boundary_tolerance": self.tolerance,
        }
