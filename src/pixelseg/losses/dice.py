"""Soft Dice loss, per class over the whole batch, for multiclass (softmax) and binary (sigmoid)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

DICE_MODES = ("multiclass", "binary")

#: A class counts as "predicted" when its soft prediction summed over the batch's valid pixels
#: reaches this value; below it, and absent from the truth, the class is left out of the mean.
ABSENT_EPS = 1e-5


def dice_loss(
    logits: Tensor,
    target: Tensor,
    *,
    mode: str = "multiclass",
    ignore_index: int = 255,
    smooth: float = 1.0,
    absent_eps: float = ABSENT_EPS,
) -> Tensor:
    r"""Soft Dice loss, one Dice per class computed over all pixels of the batch.

    With soft predictions ``p`` (softmax over classes, or sigmoid in binary mode) and one-hot
    truth ``g``, summed over the batch's valid pixels ``i`` (target not ``ignore_index``):

    .. math::
        D_c = \frac{2 \sum_i p_{ic} g_{ic} + s}{\sum_i p_{ic} + \sum_i g_{ic} + s},
        \qquad L = \frac{1}{|P|} \sum_{c \in P} (1 - D_c)

    where ``s`` is ``smooth`` and ``P`` the classes that are present: in the truth
    (``sum_i g_ic > 0``) or in the prediction (``sum_i p_ic >= absent_eps``). A class absent from
    both says nothing about the model and is left out of the mean; if no class is present (e.g.
    every pixel ignored) the loss is 0. In binary mode only the foreground class (target 1) is
    scored, as is customary (the background Dice is nearly 1 and would dilute the signal).

    Shape:
        - logits: ``(N, C, H, W)`` (multiclass, ``C >= 2``) or ``(N, 1, H, W)`` (binary).
        - target: ``(N, H, W)`` int64 class indices (0/1 in binary mode) or ``ignore_index``.
        - output: scalar.

    Args:
        logits: Raw scores.
        target: Class map.
        mode: ``"multiclass"`` or ``"binary"``.
        ignore_index: Target value of pixels that never count.
        smooth: Additive smoothing ``s`` (keeps the loss defined and its gradient bounded).
        absent_eps: Threshold on a class's soft prediction sum below which it counts as not
            predicted.

    Returns:
        The mean Dice loss over present classes.
    """
    if mode not in DICE_MODES:
        raise ValueError(f"dice mode {mode!r} is not one of {', '.join(DICE_MODES)}")
    if logits.ndim != 4 or target.ndim != 3 or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"expected logits (N, C, H, W) and target (N, H, W), got {tuple(logits.shape)} "
            f"and {tuple(target.shape)}"
        )
    if logits.dtype in (torch.float16, torch.bfloat16):
        # Sums over a whole batch of pixels lose too much in half precision.
        logits = logits.float()
    is_valid = target != ignore_index
    labels = torch.where(is_valid, target, torch.zeros_like(target)).long()
    valid = is_valid.to(logits.dtype)
    if mode == "binary":
        if logits.shape[1] != 1:
            raise ValueError(f"binary dice needs 1-channel logits, got {logits.shape[1]}")
        probs = torch.sigmoid(logits[:, 0]) * valid
        truth = labels.to(logits.dtype)  # ignored pixels already hold label 0
        intersection = (probs * truth).sum().reshape(1)
        pred_sum = probs.sum().reshape(1)
        truth_sum = truth.sum().reshape(1)
    else:
        intersection, pred_sum, truth_sum = _class_sums(logits.softmax(dim=1), labels, valid)
    # The clamp keeps an absent class at smooth = 0 from giving 0 / 0 = NaN (and NaN gradients).
    denominator = (pred_sum + truth_sum + smooth).clamp_min(torch.finfo(logits.dtype).eps)
    dice = (2.0 * intersection + smooth) / denominator
    present = ((truth_sum > 0) | (pred_sum >= absent_eps)).to(logits.dtype)
    # Masked mean without a host sync; no present class gives 0 / 1 = 0.
    return ((1.0 - dice) * present).sum() / present.sum().clamp_min(1.0)


def _class_sums(probs: Tensor, labels: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class ``sum p*g``, ``sum p`` and ``sum g`` over valid pixels, without a one-hot.

    The intersection only needs each pixel's probability of its true class (a gather), added
    into its class's bin; the truth sums are a weighted class count. Measured on CPU for
    (4, 11, 352, 352): forward + backward 38 ms against 95 ms for the one-hot products.
    """
    num_classes = probs.shape[1]
    flat = labels.reshape(-1)
    p_true = probs.gather(1, labels.unsqueeze(1)).reshape(-1) * valid.reshape(-1)
    bins = torch.zeros(num_classes, dtype=probs.dtype, device=probs.device)
    intersection = bins.scatter_add(0, flat, p_true)
    truth_sum = bins.scatter_add(0, flat, valid.reshape(-1))
    pred_sum = (probs * valid.unsqueeze(1)).sum((0, 2, 3))
    return intersection, pred_sum, truth_sum


class DiceLoss(nn.Module):
    """Module form of :func:`dice_loss`.

    Shape:
        - logits: ``(N, C, H, W)`` or ``(N, 1, H, W)``; target: ``(N, H, W)``; output: scalar.

    Args:
        mode: ``"multiclass"`` or ``"binary"``.
        ignore_index: Target value of pixels that never count.
        smooth: Additive smoothing.
        absent_eps: Soft prediction sum below which a class counts as not predicted.
    """

    def __init__(
        self,
        *,
        mode: str = "multiclass",
        ignore_index: int = 255,
        smooth: float = 1.0,
        absent_eps: float = ABSENT_EPS,
    ) -> None:
        super().__init__()
        if mode not in DICE_MODES:
            raise ValueError(f"dice mode {mode!r} is not one of {', '.join(DICE_MODES)}")
        self.mode = mode
        self.ignore_index = ignore_index
        self.smooth = smooth
        self.absent_eps = absent_eps

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss; see :func:`dice_loss`."""
        return dice_loss(
            logits,
            target,
            mode=self.mode,
            ignore_index=self.ignore_index,
            smooth=self.smooth,
            absent_eps=self.absent_eps,
        )
