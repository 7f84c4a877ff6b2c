"""The typed results of every metric, as the engine, the tasks and the reports read them.

Results stay plain JSON-friendly dicts (they are written to ``metrics.json`` as they are), typed
as :class:`~typing.TypedDict` so that a key a report reads is a key a metric writes.
"""

from __future__ import annotations

from typing import Any, TypedDict


class ConfusionResult(TypedDict):
    """:meth:`~pixelseg.metrics.confusion.ConfusionMatrix.compute` (NaN where undefined)."""

    miou: float
    miou_per_image: float
    per_class_iou: dict[str, float]
    per_class_dice: dict[str, float]
    mean_dice: float
    pixel_accuracy: float
    mean_class_accuracy: float
    fwiou: float
    majority_baseline_accuracy: float
    absent_classes: list[str]
    miou_definition: str
    num_pixels: int
    class_names: list[str]
    confusion_matrix: list[list[int]]


class BoundaryResult(TypedDict):
    """:meth:`~pixelseg.metrics.boundary.BoundaryF1.compute`."""

    boundary_f1: float
    per_class_boundary_f1: dict[str, float]
    boundary_tolerance: float


class SemanticResult(ConfusionResult, total=False):
    """A semantic evaluation: confusion and boundary metrics, AUC-ROC for two classes, and
    where it came from (``split``, ``task``, ``checkpoint``, ``precision``)."""

    boundary_f1: float
    per_class_boundary_f1: dict[str, float]
    boundary_tolerance: float
    auc_roc: float
    num_images: int
    images_per_second: float
    split: str
    task: str
    checkpoint: str
    precision: str
    tta: bool
    notes: list[str]
    intervals: dict[str, Any]
    inference: dict[str, str]
    per_image_miou: list[dict[str, Any]]
    merge_rate: dict[str, Any]


class MatchingSummary(TypedDict, total=False):
    """Matching AP per IoU threshold (``"0.50"``...), at 0.5, and their mean; pooled results
    also carry the summed ``tp``, ``fp`` and ``fn`` per threshold."""

    per_threshold: dict[str, float]
    ap50: float | None
    mean: float | None
    tp: list[int]
    fp: list[int]
    fn: list[int]


class ImageCount(TypedDict):
    """One image's object counts, merges and splits."""

    image_id: Any
    true_count: int
    pred_count: int
    merges: int
    splits: int


class CountingResult(TypedDict):
    """Count errors over a split, merges and splits."""

    count_mae: float | None
    count_mean_relative_error: float | None
    true_objects: int
    pred_objects: int
    merges: int
    splits: int
    per_image: list[ImageCount]


class CocoResult(TypedDict, total=False):
    """COCO mask AP (None where undefined) and the detections-per-image limit used."""

    AP: float | None
    AP50: float | None
    AP75: float | None
    AP_small: float | None
    AP_medium: float | None
    AP_large: float | None
    max_detections: int
    max_detections_raised: bool


class InstanceResult(TypedDict, total=False):
    """:meth:`~pixelseg.metrics.instance.InstanceEvaluator.compute`, and what the instance
    tasks add: Mask R-CNN's flat ``mask_ap``... and thresholds, the watershed's class-map
    ``pixel`` metrics and post-processing, and where the result came from."""

    num_images: int
    matching_thresholds: list[float]
    matching_ap_pooled: MatchingSummary
    matching_ap_per_image: MatchingSummary
    counting: CountingResult
    coco: CocoResult
    mask_ap: float
    mask_ap50: float
    matching_ap50: float | None
    count_mae: float | None
    thresholds: dict[str, float]
    thresholds_tuned_on: str | None
    pixel: dict[str, Any]
    postprocess: dict[str, Any]
    postprocess_tuned_on: str | None
    targets: str
    images_per_second: float
    split: str
    task: str
    checkpoint: str
    precision: str
    tta: bool
    notes: list[str]
    intervals: dict[str, Any]
    inference: dict[str, str]


#: What a task's ``evaluate`` returns.
EvaluationResult = SemanticResult | InstanceResult
