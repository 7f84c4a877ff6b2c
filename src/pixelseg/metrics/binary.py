"""Streaming AUC-ROC for binary segmentation (DRIVE's customary vessel metric).

Pixels are counted in fixed-width histograms of the foreground probability, one for positive
and one for negative pixels, so a whole split streams through in constant memory and two
accumulators merge by addition. The area is exact for the binned scores (ties inside a bin count
one half, as in the Mann-Whitney statistic); with ``num_bins`` bins the difference from the
unbinned AUC is at most the fraction of positive/negative pairs whose scores share a bin, which
for 10 000 bins is well under 1e-3 on real probability maps.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from pixelseg.metrics.confusion import all_reduce_sum


class BinaryAUROC:
    """Area under the ROC curve from foreground probabilities, accumulated over a split.

    Shape:
        - probs: ``(N, H, W)`` or ``(N, 1, H, W)`` foreground probabilities in ``[0, 1]``, or
          ``(N, 2, H, W)`` two-class probabilities (channel 1 is the foreground).
        - target: ``(N, H, W)`` 0/1 or ``ignore_index``.
        - valid: ``(N, H, W)`` bool or ``None``.

    Args:
        num_bins: Histogram bins over ``[0, 1]``.
        ignore_index: Target value of pixels that never count.
        device: Where the histograms live.
    """

    def __init__(
        self,
        num_bins: int = 10_000,
        *,
        ignore_index: int = 255,
        device: torch.device | str | None = None,
    ) -> None:
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.num_bins = num_bins
        self.ignore_index = ignore_index
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        # Row 0: negatives, row 1: positives.
        self.histogram = torch.zeros(2, num_bins, dtype=torch.int64, device=self.device)

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.histogram.zero_()

    def update(self, probs: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add a batch.

        Args:
            probs: Foreground probabilities (see the class's Shape section).
            target: ``(N, H, W)`` 0/1 map.
            valid: ``(N, H, W)`` bool region mask, or ``None`` for all pixels.

        Raises:
            ValueError: shapes disagree or a counted target is neither 0 nor 1.
        """
        if probs.ndim == 4:
            if probs.shape[1] not in (1, 2):
                raise ValueError(f"binary AUC needs 1 or 2 channels, got {probs.shape[1]}")
            probs = probs[:, -1]
        if probs.shape != target.shape:
            raise ValueError(f"probs {tuple(probs.shape)} != target {tuple(target.shape)}")
        target = target.to(self.device)
        keep = target != self.ignore_index
        if valid is not None:
            keep &= valid.to(self.device, torch.bool)
        truth = target[keep].long()
        if truth.numel() and bool(((truth != 0) & (truth != 1)).any()):
            raise ValueError("binary AUC needs targets 0, 1 or ignore_index")
        scores = probs.to(self.device)[keep].float()
        bins = (scores * self.num_bins).long().clamp_(0, self.num_bins - 1)
        counts = torch.bincount(truth * self.num_bins + bins, minlength=2 * self.num_bins)
        self.histogram += counts.view(2, self.num_bins)

    def merge(self, other: BinaryAUROC) -> None:
        """Add another accumulator's histograms (same ``num_bins``).

        Args:
            other: Accumulator to add.
        """
        if other.num_bins != self.num_bins:
            raise ValueError(f"cannot merge {other.num_bins} bins into {self.num_bins}")
        self.histogram += other.histogram.to(self.device)

    def sync(self) -> None:
        """Sum the histograms over all processes (a no-op without ``torch.distributed``)."""
        all_reduce_sum(self.histogram)

    def compute(self) -> dict[str, Any]:
        """The AUC so far.

        Returns:
            ``{"auc_roc": float, "num_pixels": int}``; the AUC is NaN unless both classes occur.
        """
        hist = self.histogram.double().cpu()
        negatives, positives = hist[0], hist[1]
        n_neg, n_pos = float(negatives.sum()), float(positives.sum())
        total = int(n_neg + n_pos)
        if n_neg == 0 or n_pos == 0:
            return {"auc_roc": float("nan"), "num_pixels": total}
        # P(score_pos > score_neg) + 0.5 P(same bin), bins ordered by score.
        negatives_below = torch.cumsum(negatives, 0) - negatives
        wins = (positives * (negatives_below + 0.5 * negatives)).sum()
        return {"auc_roc": float(wins) / (n_pos * n_neg), "num_pixels": total}
