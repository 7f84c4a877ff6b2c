"""One confusion-matrix accumulator for every semantic metric: IoU, Dice/F1, accuracies, fwIoU.

The default mIoU is dataset-level: intersections and unions are summed over the whole split
before dividing (what Cityscapes, CamVid and most papers report). The per-image mIoU (mean over
images of each image's mIoU), which rewards small images differently, is there by name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from pixelseg.metrics.results import ConfusionResult


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all processes in place when ``torch.distributed`` is initialised.

    NCCL reduces only CUDA tensors, so a CPU tensor makes a round trip through the current GPU.

    Args:
        tensor: Any shape; summed element-wise across ranks.

    Returns:
        The same tensor object, now holding the sum (unchanged without a process group).
    """
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    if dist.get_backend() == "nccl" and tensor.device.type != "cuda":
        on_gpu = tensor.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(on_gpu, op=dist.ReduceOp.SUM)
        tensor.copy_(on_gpu.to(tensor.device))
    else:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def _mean_where(values: Tensor, keep: Tensor) -> float:
    return float(values[keep].mean()) if bool(keep.any()) else math.nan


class ConfusionMatrix:
    """Streams predictions into a ``(C, C)`` confusion matrix (rows truth, columns prediction).

    ``ignore_index`` pixels and pixels where ``valid`` is false never count. A class with no pixel
    in the truth nor in the prediction is *absent*: its IoU and Dice are NaN, it is listed in
    ``"absent_classes"`` and left out of every mean. Per-image mIoU counts, for each image, the
    classes present in that image's truth or prediction, and skips images with no valid pixel.

    Shape:
        - preds: ``(N, H, W)`` int class indices, or ``(N, C, H, W)`` logits/probabilities
          (argmax over ``C``; with ``C == 1``, foreground where the logit is > 0).
        - target: ``(N, H, W)`` int class indices or ``ignore_index``.
        - valid: ``(N, H, W)`` bool or ``None``.

    Args:
        num_classes: Number of classes ``C`` (2 for a binary task).
        ignore_index: Target value of pixels that never count.
        class_names: Names for the per-class results (default ``"0"``, ``"1"``, ...).
        device: Where the counts live (the predictions' device is best: no copies).
        keep_images: also keep each image's ``(C, C)`` matrix (:meth:`image_matrices`, for
            bootstrap intervals over images).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
        device: torch.device | str | None = None,
        keep_images: bool = False,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = (
            [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
        )
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=self.device)
        # Sum of per-image mIoUs and the number of images that had one (float64 for all_reduce).
        self.per_image = torch.zeros(2, dtype=torch.float64, device=self.device)
        self.keep_images = keep_images
        self._images: list[Tensor] = []

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self.matrix.zero_()
        self.per_image.zero_()
        self._images.clear()

    def update(self, preds: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """Add a batch.

        Args:
            preds: ``(N, H, W)`` class indices or ``(N, C, H, W)`` scores.
            target: ``(N, H, W)`` class map.
            valid: ``(N, H, W)`` bool region mask, or ``None`` for all pixels.

        Raises:
            ValueError: shapes disagree, or a target or prediction is outside ``[0, C)``.
        """
        labels = predictions_to_labels(preds, target)
        target = target.to(self.device)
        labels = labels.to(self.device)
        keep = target != self.ignore_index
        if valid is not None:
            if valid.shape != target.shape:
                raise ValueError(f"valid {tuple(valid.shape)} != target {tuple(target.shape)}")
            keep &= valid.to(self.device, torch.bool)
        C = self.num_classes
        kept_target = target[keep]
        kept_labels = labels[keep]
        for what, values in (("target", kept_target), ("prediction", kept_labels)):
            if values.numel() and bool(((values < 0) | (values >= C)).any()):
                bad = values[(values < 0) | (values >= C)].unique()[:5].tolist()
                raise ValueError(f"{what} values {bad} outside [0, {C}) and not ignore_index")
        N = target.shape[0]
        image = torch.arange(N, device=self.device).view(N, 1, 1).expand_as(target)[keep]
        index = (image * C + kept_target.long()) * C + kept_labels.long()
        per_image = torch.bincount(index, minlength=N * C * C).view(N, C, C)
        self.matrix += per_image.sum(0)
        self._add_per_image(per_image)
        if self.keep_images:
            self._images.extend(per_image.cpu())

    def image_matrices(self) -> np.ndarray:
        """``(N, C, C)`` int64: each image's matrix, in update order (with ``keep_images``)."""
        if not self._images:
            return np.zeros((0, self.num_classes, self.num_classes), dtype=np.int64)
        return torch.stack(self._images).numpy()

    def _add_per_image(self, per_image: Tensor) -> None:
        tp = per_image.diagonal(dim1=1, dim2=2).double()
        union = per_image.sum(1).double() + per_image.sum(2).double() - tp
        present = union > 0
        iou = torch.where(present, tp / union.clamp_min(1), torch.zeros_like(tp))
        n_present = present.sum(1)
        has_any = n_present > 0
        image_miou = iou.sum(1)[has_any] / n_present[has_any]
        self.per_image[0] += image_miou.sum()
        self.per_image[1] += has_any.sum()

    def merge(self, other: ConfusionMatrix) -> None:
        """Add another accumulator's counts (e.g. from another process or another split part).

        Args:
            other: An accumulator with the same number of classes.
        """
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.matrix += other.matrix.to(self.device)
        self.per_image += other.per_image.to(self.device)

    def sync(self) -> None:
        """Sum the counts over all processes (a no-op without ``torch.distributed``)."""
        all_reduce_sum(self.matrix)
        all_reduce_sum(self.per_image)

    def compute(self) -> ConfusionResult:
        """All metrics from the counts so far (Python floats; NaN when undefined).

        Returns:
            ``miou`` (dataset-level, over present classes), ``miou_per_image``,
            ``per_class_iou`` / ``per_class_dice`` (name -> value, NaN if absent), ``mean_dice``,
            ``pixel_accuracy``, ``mean_class_accuracy`` (mean recall over classes in the truth),
            ``fwiou`` (IoU weighted by truth frequency), ``majority_baseline_accuracy`` (accuracy
            of always predicting the most frequent true class), ``absent_classes`` (names),
            ``miou_definition`` (``"dataset"``), ``num_pixels``, ``class_names`` and
            ``confusion_matrix`` (rows truth, columns prediction, as lists).
        """
        m = self.matrix.double().cpu()
        tp = m.diagonal()
        truth = m.sum(1)
        predicted = m.sum(0)
        union = truth + predicted - tp
        total = float(m.sum())
        present = union > 0
        nan = torch.full_like(tp, math.nan)
        iou = torch.where(present, tp / union.clamp_min(1), nan)
        dice = torch.where(present, 2 * tp / (truth + predicted).clamp_min(1), nan)
        in_truth = truth > 0
        recall = torch.where(in_truth, tp / truth.clamp_min(1), nan)
        fwiou = float((truth[in_truth] * iou[in_truth]).sum() / total) if total else math.nan
        images = float(self.per_image[1])
        return {
            "miou": _mean_where(iou, present),
            "miou_per_image": float(self.per_image[0]) / images if images else math.nan,
            "per_class_iou": dict(zip(self.class_names, iou.tolist())),
            "per_class_dice": dict(zip(self.class_names, dice.tolist())),
            "mean_dice": _mean_where(dice, present),
            "pixel_accuracy": float(tp.sum()) / total if total else math.nan,
            "mean_class_accuracy": _mean_where(recall, in_truth),
            "fwiou": fwiou,
            "majority_baseline_accuracy": float(truth.max()) / total if total else math.nan,
            "absent_classes": [n for n, p in zip(self.class_names, present.tolist()) if not p],
            "miou_definition": "dataset",
            "num_pixels": int(total),
            "class_names": list(self.class_names),
            "confusion_matrix": self.matrix.cpu().tolist(),
        }


def image_mious(matrices: np.ndarray) -> np.ndarray:
    """``(N,)`` each image's mIoU over the classes present in its truth or prediction (NaN for
    an image with no valid pixel), from ``(N, C, C)`` per-image confusion matrices."""
    m = np.asarray(matrices, dtype=np.float64)
    tp = np.diagonal(m, axis1=1, axis2=2)
    union = m.sum(1) + m.sum(2) - tp
    present = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
    counts = present.sum(1)
    return np.where(counts > 0, iou.sum(1) / np.maximum(counts, 1), np.nan)


def predictions_to_labels(preds: Tensor, target: Tensor) -> Tensor:
    """Class indices from indices or scores, checked against the target's shape.

    Args:
        preds: ``(N, H, W)`` int class indices, or ``(N, C, H, W)`` scores (argmax over ``C``;
            with ``C == 1``, foreground where the logit is > 0).
        target: ``(N, H, W)`` class map the predictions must match.

    Returns:
        ``(N, H, W)`` class indices.
    """
    if target.ndim != 3:
        raise ValueError(f"target must be (N, H, W), got {tuple(target.shape)}")
    if preds.ndim == 4:
        if preds.shape[0] != target.shape[0] or preds.shape[2:] != target.shape[1:]:
            raise ValueError(f"scores {tuple(preds.shape)} do not match {tuple(target.shape)}")
        if preds.shape[1] == 1:
            return (preds[:, 0] > 0).long()
        return preds.argmax(1)
    if preds.shape != target.shape:
        raise ValueError(f"predictions {tuple(preds.shape)} != target {tuple(target.shape)}")
    if preds.is_floating_point():
        raise ValueError("(N, H, W) predictions must be integer class indices")
    return preds
