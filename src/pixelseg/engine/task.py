"""The task contract: one engine trains, evaluates and predicts every job through it.

A job (semantic, watershed, instance) is a :class:`TaskFactory` — three functions that turn a
config into a :class:`Job` (datasets, model, run record and the task object), a trained run's
record into its datasets or into a task object without any data — and a :class:`Task`, the
object the training loop, the evaluator, the :class:`~pixelseg.inference.predictor.Predictor`
and the reports talk to. The engine knows
only these two protocols; ``pixelseg.tasks.registry`` maps ``config.task`` to the factories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from rich.console import Console
from torch import nn

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo
from pixelseg.metrics.results import EvaluationResult
from pixelseg.structures import Batch, Prediction, Region

if TYPE_CHECKING:
    from pixelseg.engine.writer import RunWriter

Autocast = Callable[[], AbstractContextManager]


class PredictFn(Protocol):
    """``predict(image, region=)`` of a normalised ``(C, H, W)`` image (the Predictor's)."""

    def __call__(
        self,
        image: torch.Tensor,
        *,
        region: Region | None = None,
    ) -> Prediction:
        """The typed prediction of one image."""


class Metric(Protocol):
    """Accumulator protocol shared by every metric (``reset/update/compute``)."""

    def reset(self) -> None:
        """Forget everything accumulated."""

    def compute(self) -> Mapping[str, Any]:
        """The metrics over everything seen since the last reset (validation reads any key)."""

    def sync(self, indices: list[int]) -> None:
        """Combine the DDP processes' accumulators, as one process would have them; ``indices``
        are the split places of the images this process added, in order."""


class Task(Protocol):
    """What the engine, the evaluator, the Predictor and the reports need from a job.

    ``step`` returns a dict with ``"loss"`` (a scalar tensor) and whatever ``update_metrics``
    needs; ``primary_metric`` names the validation key the best checkpoint follows.
    ``prediction_type`` is :class:`~pixelseg.structures.SemanticPrediction` or
    :class:`~pixelseg.structures.InstancePrediction`.
    """

    name: str
    primary_metric: str
    #: What :meth:`predict` returns (the outputs ``pixelseg predict`` writes follow it).
    prediction_type: type[Prediction]
    #: Whether the prediction is made from per-pixel maps (:meth:`dense_forward`) that tiles
    #: can blend and test-time augmentation can average; otherwise tiles are predicted one by
    #: one and their objects merged at the seams.
    dense_output: bool

    @property
    def tunes_after_training(self) -> bool:
        """Whether :meth:`after_training` does work (the budget keeps a share of time for it)."""

    def step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """Forward one batch and compute the loss (training) or the outputs (eval mode)."""

    def make_metrics(self) -> Metric:
        """A fresh accumulator of the validation metrics."""

    def update_metrics(self, metrics: Any, outputs: dict[str, Any], batch: Batch) -> None:
        """Feed one validation batch's outputs to the accumulator."""

    def after_training(
        self, model: nn.Module, job: Job, writer: RunWriter, *, seconds: float | None = None
    ) -> None:
        """Work after training with the best weights (threshold tuning on val), if any,
        within ``seconds`` when given."""

    def predict(
        self,
        model: nn.Module,
        image: torch.Tensor,
        *,
        autocast: Autocast,
        region: Region | None = None,
    ) -> Prediction:
        """The prediction for one normalised ``(C, H, W)`` image (model in eval mode).

        ``region`` says which part of a padded image is real (outputs are cropped to it) and
        where no object may be found.
        """

    def dense_forward(
        self, model: nn.Module, batch: torch.Tensor, *, autocast: Autocast
    ) -> torch.Tensor:
        """``(B, M, h, w)`` float32 per-pixel maps (on the CPU) of a normalised batch, when
        ``dense_output``; :meth:`from_dense` turns one image's maps into its prediction."""

    def from_dense(self, maps: torch.Tensor, *, region: Region | None = None) -> Prediction:
        """The prediction of one image's ``(M, H, W)`` maps (blended over tiles, averaged over
        symmetries); ``region.ignore`` pixels hold no object."""

    def evaluate(self, predict: PredictFn, dataset: Any) -> EvaluationResult:
        """Every metric of ``predict`` over ``dataset``'s samples (whole images)."""

    def print_report(self, result: EvaluationResult, *, title: str, console: Console) -> None:
        """Print ``evaluate``'s result."""

    def write_report(
        self, result: EvaluationResult, *, title: str, writer: RunWriter, folder: str
    ) -> None:
        """Write ``evaluate``'s result under ``folder`` of the run (``report.md``, ...)."""


@dataclass(frozen=True)
class TaskFactory:
    """How a job is built: from a config (training) or from a trained run's record.

    Attributes:
        name: the ``config.task`` it serves.
        build_job: ``(config, splits, info) -> Job``: datasets, model, run record and task;
            ``info`` None starts a new run (decisions made from the training data), a trained
            run's ``info`` reuses its decisions (normalisation, classes, thresholds).
        build_datasets: ``(config, splits, info) -> {split: dataset}``: a trained run's view of
            ``config``'s data, untransformed.
        from_run: ``(config, info) -> Task``: the task object of a trained run, without data.
    """

    name: str
    build_job: Callable[[Config, Sequence[str], RunInfo | None], Job]
    build_datasets: Callable[[Config, Sequence[str], RunInfo], Mapping[str, Any]]
    from_run: Callable[[Config, RunInfo], Task]


@dataclass
class Job:
    """Everything training needs for one config: the task, the data, the model, the record."""

    task: Task
    datasets: Mapping[str, Any]
    collate: Callable[[Sequence[Any]], Any]
    info: RunInfo
    model: nn.Module
