"""Semantic segmentation metrics: confusion-matrix scores, binary AUC-ROC and boundary F1."""

from pixelseg.metrics.binary import BinaryAUROC
from pixelseg.metrics.boundary import BoundaryF1, boundary_map
from pixelseg.metrics.confusion import ConfusionMatrix, all_reduce_sum, predictions_to_labels

__all__ = [
    "BinaryAUROC",
    "BoundaryF1",
    "ConfusionMatrix",
    "all_reduce_sum",
    "boundary_map",
    "predictions_to_labels",
]
