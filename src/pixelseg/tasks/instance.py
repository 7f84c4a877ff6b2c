"""The instance task: Mask R-CNN trained, validated, tuned and evaluated by the shared engine.

Training sums torchvision's loss dict into ``"loss"``. Validation feeds the raw, overlapping,
scored masks to COCO mask AP (``mask_ap``, the primary metric that early stopping follows) and
the score-resolved instance label image to the matching AP and counting metrics. After training
the score and mask thresholds are tuned on val for counting (see
:func:`~pixelseg.tasks.instance_outputs.tune_thresholds`) and stored in the run directory
(``postprocess.json``, and ``run.json``'s ``extra["postprocess"]`` which evaluation and
prediction read).

The engine reaches this module through ``pixelseg.engine.setup.task_module("instance")``:
:func:`build_job`, :func:`evaluate_job`, :func:`print_report` and :func:`predict_files`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader

from pixelseg.config import Config
from pixelseg.data.instance_dataset import DEFAULT_IGNORE_INDEX, collate_detection, detection_inputs
from pixelseg.engine.progress import progress_bar
from pixelseg.engine.run_dir import RunInfo, build_model_from_info
from pixelseg.structures import Batch
from pixelseg.tasks.instance_anchors import resolve_anchor_sizes
from pixelseg.tasks.instance_outputs import (
    DEFAULT_MASK_THRESHOLD,
    DEFAULT_SCORE_THRESHOLD,
    Detections,
    InstanceMetrics,
    tune_thresholds,
)
from pixelseg.tasks.instance_predict import predict_files

if TYPE_CHECKING:
    from pixelseg.engine.setup import Job
    from pixelseg.engine.writer import RunWriter

__all__ = [
    "InstanceMetrics",
    "InstanceTask",
    "build_job",
    "evaluate_job",
    "predict_files",
    "print_report",
]


def _truths(batch: Batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(N, H, W)`` bool masks and ``(N,)`` labels of each image of a batch, on the CPU."""
    _, targets = detection_inputs(batch)
    return [(t["masks"].bool().cpu().numpy(), t["labels"].cpu().numpy()) for t in targets]


class InstanceTask:
    """Mask R-CNN: ``step`` returns the summed ``loss`` (training) or the ``detections`` (eval).

    Args:
        num_classes: foreground classes.
        class_names: their names (class ``k`` is ``class_names[k - 1]``).
        score_threshold: for the label images (tuned by :meth:`after_training`).
        mask_threshold: for the masks (tuned by :meth:`after_training`).
    """

    name = "instance"
    primary_metric = "mask_ap"

    def __init__(
        self,
        *,
        num_classes: int,
        class_names: Sequence[str],
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        mask_threshold: float = DEFAULT_MASK_THRESHOLD,
    ) -> None:
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.score_threshold = score_threshold
        self.mask_threshold = mask_threshold

    def step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """One forward pass.

        Training mode: ``loss`` (the sum) and each of torchvision's five losses, detached, for
        logging. Eval mode (torchvision then returns detections, not losses): ``loss`` 0 and
        ``detections``, per image ``boxes``, ``labels``, ``scores``, ``masks`` ``(K, 1, H, W)``.
        """
        images, targets = detection_inputs(batch)
        if model.training:
            losses: dict[str, torch.Tensor] = model(images, targets)
            total = torch.stack([value.float() for value in losses.values()]).sum()
            return {"loss": total, **{key: value.detach() for key, value in losses.items()}}
        detections = model(images)
        return {"loss": torch.zeros((), device=batch.images.device), "detections": detections}

    def make_metrics(self) -> InstanceMetrics:
        """Fresh validation metrics with the current thresholds."""
        return InstanceMetrics(
            score_threshold=self.score_threshold, mask_threshold=self.mask_threshold
        )

    def update_metrics(self, metrics: Any, outputs: dict[str, Any], batch: Batch) -> None:
        """Feed one eval batch's detections and true masks to ``metrics``."""
        for output, (masks, labels), image_id in zip(
            outputs["detections"], _truths(batch), batch.ids, strict=True
        ):
            metrics.update(Detections.from_output(output), masks, labels, image_id)

    @torch.no_grad()
    def after_training(self, model: nn.Module, job: Job, writer: RunWriter) -> None:
        """Tune the score and mask thresholds on val for counting, and store them in the run.

        Writes ``postprocess.json`` (the choice, the criterion and the whole grid) and the
        choice into ``run.json`` (``extra["postprocess"]``).
        """
        if "val" not in job.datasets:
            return
        device = next(model.parameters()).device
        model.eval()
        loader = DataLoader(job.datasets["val"], batch_size=1, collate_fn=job.collate)

        def batches() -> Iterator[tuple[list[Detections], list[np.ndarray]]]:
            for batch in loader:
                batch = batch.to(device)
                outputs = model(detection_inputs(batch)[0])
                truths = [masks for masks, _ in _truths(batch)]
                yield [Detections.from_output(o) for o in outputs], truths

        with progress_bar("tune thresholds", total=len(loader)) as advance:
            tuned = tune_thresholds(batches(), progress=advance)
        self.score_threshold = float(tuned["score_threshold"])
        self.mask_threshold = float(tuned["mask_threshold"])
        job.info.extra["postprocess"] = {k: v for k, v in tuned.items() if k != "grid"}
        writer.json("postprocess.json", tuned)
        writer.json("run.json", job.info.to_dict())
        Console(highlight=False).print(
            f"thresholds tuned on val: score {self.score_threshold}, mask {self.mask_threshold} "
            f"(matching AP50 {tuned['matching_ap50']:.4f}, count MAE {tuned['count_mae']:.3f})"
        )


def _check_model_name(name: str) -> None:
    from pixelseg.errors import ConfigError
    from pixelseg.models.mask_rcnn import MASK_RCNN_PRESETS

    if name not in MASK_RCNN_PRESETS:
        raise ConfigError(
            f"model.name: task 'instance' trains a Mask R-CNN, got {name!r}; choose from "
            f"{', '.join(sorted(MASK_RCNN_PRESETS))} (or task 'watershed' for semantic models)"
        )


def build_job(config: Config, splits: Sequence[str], info: RunInfo | None) -> Job:
    """The datasets, model, task and run record of an instance config.

    A new run (``info`` None) takes the anchor sizes from the config's ``model.options`` or,
    when unset, from the object sizes of the training split (as ``pixelseg check`` suggests);
    a trained run (``info`` given) rebuilds exactly its recorded model and thresholds.

    Raises:
        ConfigError: the model is not a Mask R-CNN preset, or an option is invalid.
        DataError: the dataset has errors.
    """
    from pixelseg.data.instance_build import build_instance_datasets
    from pixelseg.data.normalize import Normalizer
    from pixelseg.engine.setup import Job
    from pixelseg.models.registry import create_model

    if info is None:
        _check_model_name(config.model.name)
    normalizer = Normalizer.from_dict(info.normalizer) if info else None
    datasets = build_instance_datasets(config, splits, normalizer=normalizer, verify=info is None)
    first = next(iter(datasets.values()))
    if info is None:
        options = dict(config.model.options)
        anchors = resolve_anchor_sizes(options.get("anchor_sizes"), datasets.get("train"))
        options["anchor_sizes"] = anchors["anchor_sizes"]
        model = create_model(
            config.model.name,
            num_classes=first.num_classes,
            in_channels=first.in_channels,
            weights=config.model.weights,
            **options,
        )
        info = RunInfo(
            task="instance",
            class_names=list(first.classes),
            palette=[],
            ignore_index=DEFAULT_IGNORE_INDEX,
            normalizer=first.normalizer.to_dict(),  # type: ignore[union-attr]
            model=dict(model.config),  # type: ignore[arg-type]
            in_channels=first.in_channels,
            loss={
                "name": "mask_rcnn",
                "weighting": "none",
                "reason": "Mask R-CNN's own losses (RPN objectness and boxes, class, box, mask), "
                "summed",
            },
            extra={"anchors": anchors},
        )
    else:
        model = build_model_from_info(info)
    post = info.extra.get("postprocess") or {}
    task = InstanceTask(
        num_classes=len(info.class_names),
        class_names=info.class_names,
        score_threshold=float(post.get("score_threshold", DEFAULT_SCORE_THRESHOLD)),
        mask_threshold=float(post.get("mask_threshold", DEFAULT_MASK_THRESHOLD)),
    )
    return Job(task=task, datasets=datasets, collate=collate_detection, info=info, model=model)


@torch.no_grad()
def evaluate_job(model: nn.Module, job: Job, split: str, *, device: str) -> dict[str, Any]:
    """Every instance metric of ``model`` on ``split``, with the run's tuned thresholds.

    Returns:
        :meth:`InstanceMetrics.compute`'s dict plus ``images_per_second``.
    """
    from pixelseg.engine.precision import resolve_device

    dev = resolve_device(device)
    model.to(dev).eval()
    task = job.task
    metrics = task.make_metrics()
    loader = DataLoader(job.datasets[split], batch_size=1, collate_fn=job.collate)
    start = time.perf_counter()
    with progress_bar("evaluate", total=len(loader)) as advance:
        for batch in loader:
            batch = batch.to(dev)
            task.update_metrics(metrics, task.step(model, batch), batch)
            advance()
    result = metrics.compute()
    result["images_per_second"] = len(loader) / max(time.perf_counter() - start, 1e-9)
    return result


def print_report(result: dict[str, Any], *, title: str, console: Console) -> None:
    """Print the instance metrics table (shared with the watershed task) and the thresholds."""
    from pixelseg.report.instance_report import print_instance_report

    print_instance_report(result, title=title, console=console)
    thresholds = result.get("thresholds")
    if thresholds:
        console.print(
            f"label images: detections scoring >= {thresholds['score']}, mask pixels >= "
            f"{thresholds['mask']}; COCO mask AP on all detections: {result['mask_ap']:.4f}"
        )
