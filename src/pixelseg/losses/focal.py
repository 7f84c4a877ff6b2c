"""Multiclass focal loss (Lin et al., 2017) with optional per-class weights and ``ignore_index``."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 2.0,
    class_weights: Tensor | None = None,
    ignore_index: int = 255,
) -> Tensor:
    r"""Focal loss: cross-entropy that down-weights pixels already classified well.

    With ``p_t`` the softmax probability of the true class and ``\alpha_t`` its class weight
    (1 without ``class_weights``), over pixels ``i`` whose target is not ``ignore_index``:

    .. math::
        L = \frac{\sum_i \alpha_{y_i} (1 - p_{i,y_i})^\gamma \, (-\log p_{i,y_i})}
                 {\sum_i \alpha_{y_i}}

    The normaliser is the weight sum, as in weighted cross-entropy, so ``gamma = 0`` gives
    exactly :func:`~pixelseg.losses.cross_entropy.cross_entropy_loss` with the same weights.
    An all-ignored batch gives 0.

    Shape:
        - logits: ``(N, C, H, W)`` float, ``C >= 2`` (softmax) or ``C == 1`` (sigmoid).
        - target: ``(N, H, W)`` int64 class indices (0/1 in binary mode) or ``ignore_index``.
        - class_weights: ``(C,)`` (``(2,)`` in binary mode) or ``None``.
        - output: scalar.

    Args:
        logits: Raw scores.
        target: Class map.
        gamma: Focusing parameter (0 = cross-entropy; 2 in the paper).
        class_weights: Per-class weights ``alpha``.
        ignore_index: Target value of pixels that never count.

    Returns:
        The mean focal loss.
    """
    if logits.ndim != 4 or target.ndim != 3 or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"expected logits (N, C, H, W) and target (N, H, W), got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}"
        )
    if gamma < 0:
        raise ValueError(f"focal gamma must be >= 0, got {gamma}")
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    if logits.shape[1] == 1:
        # softmax([0, x]) = [1 - sigmoid(x), sigmoid(x)]: binary mode reuses the multiclass path.
        logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
    valid = target != ignore_index
    labels = torch.where(valid, target, torch.zeros_like(target)).long()
    log_pt = logits.log_softmax(dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
    pt = log_pt.exp()
    per_pixel = -((1.0 - pt).clamp_min(0.0) ** gamma) * log_pt
    weights = valid.to(logits.dtype)
    if class_weights is not None:
        weights = weights * class_weights.to(logits.device, logits.dtype)[labels]
    return (per_pixel * weights).sum() / weights.sum().clamp_min(torch.finfo(logits.dtype).tiny)


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss` (the class weights are a buffer).

    Shape:
        - logits: ``(N, C, H, W)``; target: ``(N, H, W)``; output: scalar.

    Args:
        gamma: Focusing parameter.
        class_weights: ``(C,)`` per-class weights ``alpha`` or ``None``.
        ignore_index: Target value of pixels that never count.
    """

    class_weights: Tensor | None

    def __init__(
        self,
        *,
        gamma: float = 2.0,
        class_weights: Tensor | None = None,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.ignore_index = ignore_index
        weights = None if class_weights is None else torch.as_tensor(class_weights).float()
        self.register_buffer("class_weights", weights)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss; see :func:`focal_loss`."""
        return focal_loss(
            logits,
            target,
            gamma=self.gamma,
            class_weights=self.class_weights,
            ignore_index=self.ignore_index,
        )
