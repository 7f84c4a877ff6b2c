"""Validation metrics, evaluation, reports and prediction of the watershed task.

Evaluation and prediction use the post-processing settings stored in the run (``run.json``'s
``extra["postprocess"]``, tuned on val after training), so the reported numbers on the test split
come from thresholds that never saw it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from pixelseg.engine.progress import progress_bar
from pixelseg.engine.setup import Job
from pixelseg.metrics.confusion import ConfusionMatrix
from pixelseg.metrics.instance import InstanceEvaluator
from pixelseg.report.instance_report import instance_markdown, print_instance_report
from pixelseg.structures import Batch
from pixelseg.tasks.watershed_data import IGNORE_INDEX
from pixelseg.tasks.watershed_postprocess import (
    apply_postprocess,
    default_postprocess,
    object_scores,
    params_summary,
    predict_maps,
    settings_from_dict,
    split_outputs,
    suppress_ignored,
)


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

    def compute(self) -> dict[str, Any]:
        """mIoU and the rest of the confusion metrics, ``matching_ap50`` and ``count_mae``."""
        result = dict(self.confusion.compute())
        instance = self.instances.compute()
        result["matching_ap50"] = instance["matching_ap_pooled"]["ap50"]
        result["count_mae"] = instance["counting"]["count_mae"]
        return result


def evaluate_job(model: torch.nn.Module, job: Job, split: str, *, device: str) -> dict[str, Any]:
    """Instance metrics of ``model`` on ``split``, after the run's post-processing.

    Maps are predicted on whole images and cropped back to their size before padding; ignored
    pixels (COCO crowd regions) hold no predicted object.

    Returns:
        :meth:`~pixelseg.metrics.instance.InstanceEvaluator.compute`'s dict plus ``pixel``
        (mIoU and per-class IoU of the class map), ``postprocess``, ``postprocess_tuned_on``,
        ``targets``, ``precision`` and ``images_per_second``.
    """
    from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision

    task: Any = job.task
    dev = resolve_device(device)
    precision = resolve_precision("auto", dev)
    model = model.to(dev).eval()
    names = list(task.class_names)
    confusion = ConfusionMatrix(len(names), ignore_index=IGNORE_INDEX, class_names=names)
    evaluator = InstanceEvaluator()
    dataset = job.datasets[split]
    start = time.perf_counter()
    with progress_bar("evaluate", total=len(dataset)) as advance:
        for index in range(len(dataset)):
            sample = dataset[index]
            height, width = sample.meta.get("orig_size", sample.image.shape[-2:])
            probs, distance = predict_maps(
                model,
                sample.image,
                num_classes=task.num_classes,
                distance_head=task.settings.distance_head,
                size=(height, width),
                autocast=autocast_factory(precision, dev),
            )
            class_map = sample.class_map[:height, :width]
            confusion.update(torch.from_numpy(probs.argmax(0))[None], class_map[None])
            probs = suppress_ignored(probs, (class_map == IGNORE_INDEX).numpy())
            pred = apply_postprocess(probs, distance, task.postprocess)
            evaluator.update(
                pred,
                sample.instances[:height, :width].numpy(),
                scores=object_scores(probs, pred),
                image_id=sample.id,
            )
            advance()
    result = evaluator.compute()
    pixel = confusion.compute()
    result["pixel"] = {"miou": pixel["miou"], "per_class_iou": pixel["per_class_iou"]}
    result["postprocess"] = task.postprocess
    result["postprocess_tuned_on"] = job.info.extra.get("postprocess_tuned_on")
    result["targets"] = task.settings.targets
    result["precision"] = precision
    result["images_per_second"] = len(dataset) / max(time.perf_counter() - start, 1e-9)
    return result


def _extra_lines(result: dict[str, Any]) -> list[str]:
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


def print_report(result: dict[str, Any], *, title: str, console: Console) -> None:
    """Print the instance metrics, then the post-processing used and the class-map mIoU."""
    print_instance_report(result, title=title, console=console)
    for line in _extra_lines(result):
        console.print(line, soft_wrap=True)


def markdown_report(result: dict[str, Any], *, title: str) -> str:
    """The same report as Markdown."""
    lines = "".join(f"- {line}\n" for line in _extra_lines(result))
    return instance_markdown(result, title=title) + "\n" + lines


def predict_files(
    run_dir: str | Path, files: list[Path], out: Path, *, device: str
) -> tuple[int, int]:
    """Write ``<stem>_instances.png`` (16-bit labels) and ``<stem>_overlay.png`` per image.

    Outputs are written atomically and images whose two outputs exist are skipped, so a killed
    run resumes where it stopped.

    Returns:
        ``(written, skipped)`` counts.

    Raises:
        DataError: an image whose band count differs from the training images'.
    """
    from pixelseg.data.normalize import Normalizer, image_to_float
    from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
    from pixelseg.engine.run_dir import load_model, read_run
    from pixelseg.inference.predict import predict_each, read_model_input
    from pixelseg.report.instance_figures import save_contour_overlay, save_label_png16

    _, info = read_run(run_dir)
    settings = settings_from_dict(info.extra["watershed"])
    postprocess = info.extra.get("postprocess") or default_postprocess(settings)
    num_classes = len(info.class_names)
    normalizer = Normalizer.from_dict(info.normalizer)
    dev = resolve_device(device)
    autocast = autocast_factory(resolve_precision("auto", dev), dev)
    model = load_model(run_dir).to(dev)

    def predict_one(path: Path, label_path: Path, overlay_path: Path) -> None:
        image = read_model_input(path, info.in_channels)
        probs, distance = predict_maps(
            model,
            normalizer(image_to_float(image)),
            num_classes=num_classes,
            distance_head=settings.distance_head,
            autocast=autocast,
        )
        labels = apply_postprocess(probs, distance, postprocess)
        save_contour_overlay(overlay_path, image, labels)
        save_label_png16(label_path, labels)

    return predict_each(files, out, predict_one, label="instances")
