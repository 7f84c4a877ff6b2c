"""Cross-entropy with class weights and ``ignore_index`` (multiclass, or binary: 1 channel).

The class weights usually come from the training split's pixel counts through
:func:`pixelseg.data.class_weights.class_weights_from_counts` (median-frequency balancing, as
SegNet used on CamVid); :meth:`CrossEntropyLoss.from_counts` wires the two together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixelseg.data.class_weights import class_weights_from_counts


def _check_shapes(logits: Tensor, target: Tensor) -> None:
    if logits.ndim != 4 or target.ndim != 3:
        raise ValueError(
            f"expected logits (N, C, H, W) and target (N, H, W), got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}"
        )
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in N, H or W"
        )


def cross_entropy_loss(
    logits: Tensor,
    target: Tensor,
    *,
    class_weights: Tensor | None = None,
    ignore_index: int = 255,
) -> Tensor:
    r"""Weighted pixel-wise cross-entropy, averaged over the pixels that count.

    .. math::
        L = \frac{\sum_i w_{y_i} \, (-\log p_{i, y_i})}{\sum_i w_{y_i}}

    over pixels ``i`` whose target is not ``ignore_index`` (``w = 1`` without class weights), so
    it equals ``torch.nn.functional.cross_entropy(..., weight=w, ignore_index=...)``. With one
    channel (binary mode, targets 0 or 1) ``p_{i,1} = sigmoid(logit_i)`` and
    ``p_{i,0} = 1 - p_{i,1}``, and
    ``class_weights`` (if given) has 2 entries, (background, foreground). A batch whose pixels
    are all ignored gives 0 (with a gradient graph), not NaN.

    Shape:
        - logits: ``(N, C, H, W)`` float, ``C >= 2`` (softmax) or ``C == 1`` (sigmoid).
        - target: ``(N, H, W)`` int64 class indices or ``ignore_index``.
        - class_weights: ``(C,)`` (``(2,)`` in binary mode) or ``None``.
        - output: scalar.

    Args:
        logits: Raw scores.
        target: Class map.
        class_weights: Per-class weights (e.g. median-frequency balancing).
        ignore_index: Target value of pixels that never count.

    Returns:
        The mean loss.
    """
    _check_shapes(logits, target)
    valid = target != ignore_index
    # Class 0 stands in for ignored pixels; their weight is zeroed below. No `.any()` checks:
    # they would synchronise the GPU on every step.
    labels = torch.where(valid, target, torch.zeros_like(target)).long()
    if logits.shape[1] == 1:
        per_pixel = F.binary_cross_entropy_with_logits(
            logits[:, 0], labels.to(logits.dtype), reduction="none"
        )
    else:
        per_pixel = F.cross_entropy(logits, labels, reduction="none")
    weights = valid.to(logits.dtype)
    if class_weights is not None:
        weights = weights * class_weights.to(logits.device, logits.dtype)[labels]
    # An all-ignored batch gives 0 / tiny = 0 instead of NaN.
    return (per_pixel * weights).sum() / weights.sum().clamp_min(torch.finfo(logits.dtype).tiny)


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy_loss` (the class weights are a buffer).

    Shape:
        - logits: ``(N, C, H, W)``; target: ``(N, H, W)``; output: scalar.

    Args:
        class_weights: ``(C,)`` per-class weights or ``None``.
        ignore_index: Target value of pixels that never count.
    """

    class_weights: Tensor | None

    def __init__(self, *, class_weights: Tensor | None = None, ignore_index: int = 255) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        weights = None if class_weights is None else torch.as_tensor(class_weights).float()
        self.register_buffer("class_weights", weights)

    @classmethod
    def from_counts(
        cls,
        counts: Tensor | Sequence[float],
        *,
        method: str = "median",
        ignore_index: int = 255,
    ) -> CrossEntropyLoss:
        """Weighted cross-entropy from the training split's per-class pixel counts.

        Args:
            counts: ``(C,)`` pixel count of each class.
            method: ``"median"`` (median-frequency balancing) or ``"inverse"`` frequency.
            ignore_index: Target value of pixels that never count.

        Returns:
            The loss module with weights normalised to mean 1 and clipped to [0.1, 10].
        """
        weights = class_weights_from_counts(torch.as_tensor(counts), method=method)
        return cls(class_weights=weights, ignore_index=ignore_index)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss; see :func:`cross_entropy_loss`."""
        return cross_entropy_loss(
            logits, target, class_weights=self.class_weights, ignore_index=self.ignore_index
        )
