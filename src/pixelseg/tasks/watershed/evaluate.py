"""Validation metrics, evaluation and reports of the watershed task.

Evaluation and prediction use the post-processing settings stored in the run (``run.json``'s
``extra["postprocess"]``, tuned on val after training), so the reported numbers on the test split
come from thresholds that never saw it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from rich.console import Console

from pixelseg.engine.progress import progress_bar
from pixelseg.metrics.confusion import ConfusionMatrix
from pixelseg.metrics.instance import InstanceEvaluator
from pixelseg.metrics.results import InstanceResult
from pixelseg.postprocess.watershed import apply_postprocess, params_summary
from pixelseg.report.instance_report import instance_markdown, print_instance_report
from pixelseg.structures import Batch, InstancePrediction, Region
from pixelseg.tasks.watershed.data import IGNORE_INDEX
from pixelseg.tasks.watershed.maps import split_outputs

if TYPE_CHECKING:
    from pixelseg.engine.task import PredictFn
    from pixelseg.tasks.watershed.task import WatershedTask


class WatershedMetrics:
    """Validation metrics: mIoU of the class map, and matching AP50 after post-processing.

    Args:
        class_names: the class map's classes.
        postprocess: post-processing settings (the untuned defaults during training).
        distance_head: whether the outputs carry a distance channel.
    """

    def __init__(
        self, class_names: Sequence[str], *, postprocess: dict[str, Any], distance_head: bool
    ) -> None:
        self.confusion = ConfusionMatrix(
            len(class_names), ignore_index=IGNORE_INDEX, class_names=list(class_names)
        )
        self.instances = InstanceEvaluator(thresholds=(0.5,), compute_coco=False)
        self.postprocess = postprocess
        self.distance_head = distance_head

    def reset(self) -> None:
        """Forget everything accumulated."""
        self.confusion.reset()
        self.instances.reset()

    def update(self, outputs: torch.Tensor, batch: Batch) -> None:
        """Accumulate model ``outputs`` ``(N, K(+1), H, W)`` against a collated batch."""
        num_classes = self.confusion.num_classes
        logits, distance = split_outputs(
            outputs.float(), num_classes=num_classes, distance_head=self.distance_head
        )
        self.confusion.update(logits.argmax(1), batch.masks)
        probs = logits.softmax(1)
        # Padded and ignored pixels hold no object: the post-processing must not find one there.
        ignored = (batch.masks == IGNORE_INDEX).unsqueeze(1)
        background = torch.zeros_like(probs)
        background[:, 0] = 1.0
        prob_maps = torch.where(ignored, background, probs).cpu().numpy()
        for index, target in enumerate(batch.targets or []):
            dist = None if distance is None else distance[index].cpu().numpy()
            pred = apply_postprocess(prob_maps[index], dist, self.postprocess)
            self.instances.update(pred, target["instances"].cpu().numpy())

    def sync(self, indices: list[int]) -> None:
        """Combine the DDP processes: confusion counts summed, images gathered in split order
        (``indices``: the split place of each image this process saw)."""
        self.confusion.sync()
        self.instances.sync(indices)

    def compute(self) -> dict[str, Any]:
        """mIoU and the rest of the confusion metrics, ``matching_ap50`` and ``count_mae``.

        (The validation record, not an evaluation result: it mixes pixel and object metrics.)
        """
        result = dict(self.confusion.compute())
        instance = self.instances.compute()
        result["matching_ap50"] = instance["matching_ap_pooled"]["ap50"]
        result["count_mae"] = instance["counting"]["count_mae"]
        return result


def evaluate_watershed(task: WatershedTask, predict: PredictFn, dataset: Any) -> InstanceResult:
    """Instance metrics of ``predict`` on ``dataset``, after the run's post-processing.

    Maps are predicted on whole images and cropped back to their size before padding; ignored
    pixels (COCO crowd regions) hold no predicted object.

    Returns:
        :meth:`~pixelseg.metrics.instance.InstanceEvaluator.compute`'s dict plus ``pixel``
        (mIoU and per-class IoU of the class map), ``postprocess``, ``postprocess_tuned_on``,
        ``targets`` and
        ``images_per_second``.
    """
    names = list(task.class_names)
    confusion = ConfusionMatrix(len(names), ignore_index=IGNORE_INDEX, class_names=names)
    evaluator = InstanceEvaluator()
    start = time.perf_counter()
    with progress_bar("evaluate", total=len(dataset)) as advance:
        for index in range(len(dataset)):
            sample = dataset[index]
            height, width = sample.meta.get("orig_size", sample.image.shape[-2:])
            class_map = sample.class_map[:height, :width]
            ignore = (class_map == IGNORE_INDEX).numpy()
            prediction = predict(sample.image, region=Region((height, width), ignore))
            assert isinstance(prediction, InstancePrediction)
            assert prediction.class_probs is not None
            confusion.update(
                torch.from_numpy(prediction.class_probs.argmax(0))[None], class_map[None]
            )
            evaluator.update(
                prediction.label_image,
                sample.instances[:height, :width].numpy(),
                scores=prediction.scores,
                image_id=sample.id,
            )
            advance()
    result = evaluator.compute()
    pixel = confusion.compute()
    result["pixel"] = {"miou": pixel["miou"], "per_class_iou": pixel["per_class_iou"]}
    result["postprocess"] = task.postprocess
    result["postprocess_tuned_on"] = task.postprocess_tuned_on
    result["targets"] = task.settings.targets
    result["images_per_second"] = len(dataset) / max(time.perf_counter() - start, 1e-9)
    return result


def _extra_lines(result: InstanceResult) -> list[str]:
    """Post-processing and pixel-level lines that follow the instance report."""
    tuned = result.get("postprocess_tuned_on")
    lines = [
        f"post-processing: {params_summary(result['postprocess'])}"
        + (f", tuned on the {tuned} split" if tuned else ", untuned defaults")
    ]
    pixel = result.get("pixel") or {}
    if pixel.get("miou") is not None:
        per_class = ", ".join(
            f"{name} {100 * value:.2f} %" for name, value in pixel["per_class_iou"].items()
        )
        lines.append(f"class map mIoU {100 * pixel['miou']:.2f} % ({per_class})")
    if result["postprocess"]["method"] == "connected_components":
        lines.append(
            "naive baseline: each connected blob is one object, so touching objects merge "
            "(see merges above)"
        )
    return lines


def print_report(result: InstanceResult, *, title: str, console: Console) -> None:
    """Print the instance metrics, then the post-processing used and the class-map mIoU."""
    print_instance_report(result, title=title, console=console)
    for line in _extra_lines(result):
        console.print(line, soft_wrap=True)


def markdown_report(result: InstanceResult, *, title: str) -> str:
    """The same report as Markdown."""
    lines = "".join(f"- {line}\n" for line in _extra_lines(result))
    return instance_markdown(result, title=title) + "\n" + lines
