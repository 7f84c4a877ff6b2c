"""The end of a run: ``summary.json``, the time breakdown and the closing log lines."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pixelseg.engine.timing import breakdown_line
from pixelseg.engine.training import Training


@dataclass
class TrainSummary:
    """What a finished ``fit`` reports (also ``summary.json``).

    Attributes:
        epochs: epochs completed (a budget may end the last one early).
        steps: optimizer steps.
        images_seen: training crops processed.
        train_seconds: wall-clock seconds of the run (start-up, validation and post-training
            included; resumes summed).
        best_epoch: epoch of the best validation (-1: none).
        best_step: step of the best validation (-1: none).
        metric: the validation metric the best checkpoint followed.
        best_metric: its best value.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        device: the torch device.
        validations: validations run.
        time_breakdown: seconds and fractions per category (:mod:`pixelseg.engine.timing`).
        steps_per_second: optimizer steps per second of wall time.
        images_per_second: training crops per second of wall time.
    """

    epochs: int
    steps: int
    images_seen: int
    train_seconds: float
    best_epoch: int
    best_step: int
    metric: str
    best_metric: float | None
    precision: str
    device: str
    validations: int
    time_breakdown: dict[str, Any]
    steps_per_second: float
    images_per_second: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the best value under ``best_<metric>`` (``best_miou``...)."""
        raw = dataclasses.asdict(self)
        raw[f"best_{self.metric}"] = raw.pop("best_metric")
        raw["startup_seconds"] = self.time_breakdown["seconds"]["startup"]
        return raw


def finish(run: Training) -> TrainSummary:
    """Write ``summary.json`` and the closing log lines; return the summary."""
    state = run.state
    wall = run.clock.elapsed()
    state.elapsed = wall
    breakdown = run.ledger.breakdown(wall)
    summary = TrainSummary(
        epochs=state.epoch,
        steps=state.step,
        images_seen=state.images_seen,
        train_seconds=wall,
        best_epoch=state.best_epoch,
        best_step=state.best_step,
        metric=run.metric,
        best_metric=state.best_metric,
        precision=run.precision,
        device=str(run.device),
        validations=state.validations,
        time_breakdown=breakdown,
        steps_per_second=state.step / max(wall, 1e-9),
        images_per_second=state.images_seen / max(wall, 1e-9),
    )
    run.writer.json("summary.json", summary.to_dict())
    run.log(breakdown_line(breakdown))
    run.log(
        f"{summary.steps_per_second:.2f} steps/s, {summary.images_per_second:.1f} crops/s; "
        f"best {run.metric} {state.best_metric} at step {state.best_step} (epoch "
        f"{state.best_epoch}); run directory {run.run_dir}"
    )
    return summary
