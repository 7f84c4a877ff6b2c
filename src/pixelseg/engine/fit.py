"""``fit``: one config trained into a run directory by the pieces of the engine.

The pieces, each small and tested alone: the clock and budget (:mod:`~pixelseg.engine.clock`),
the validation schedule and early stopping (:mod:`~pixelseg.engine.validation`), the checkpoint
policy (:mod:`~pixelseg.engine.checkpoint_policy`) and the epoch loop
(:mod:`~pixelseg.engine.loop`). The job comes from a :class:`~pixelseg.engine.task.TaskFactory`;
the engine never knows which one.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from pixelseg.config import Config
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import load_checkpoint
from pixelseg.engine.checkpoint_policy import CheckpointPolicy
from pixelseg.engine.clock import Budget, Clock
from pixelseg.engine.console import RunLog, epoch_header, epoch_row
from pixelseg.engine.data_order import SeededDataset, epoch_batches
from pixelseg.engine.loop import LoopState, evaluate, train_one_epoch
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.schedule import lr_factor
from pixelseg.engine.task import Job, TaskFactory
from pixelseg.engine.validation import EarlyStopping, ValidationSchedule, improved
from pixelseg.engine.writer import RunWriter
from pixelseg.errors import CheckpointError, ConfigError


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


@dataclass
class TrainSummary:
    """What a finished ``fit`` reports (also ``summary.json``).

    Attributes:
        epochs: epochs completed.
        steps: optimizer steps.
        images_seen: training images (crops) processed.
        train_seconds: wall-clock seconds of training, resumes summed.
        best_epoch: epoch of the best validation (-1: none).
        metric: the validation metric the best checkpoint followed.
        best_metric: its best value.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        device: the torch device.
    """

    epochs: int
    steps: int
    images_seen: int
    train_seconds: float
    best_epoch: int
    metric: str
    best_metric: float | None
    precision: str
    device: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the best value under ``best_<metric>`` (``best_miou``...)."""
        raw = dataclasses.asdict(self)
        raw[f"best_{self.metric}"] = raw.pop("best_metric")
        return raw


def _resumed_config(config: Config, run_dir: Path) -> tuple[Config, rd.RunInfo]:
    """The stored config of a run to resume (budget and precision from ``config``)."""
    if not (run_dir / rd.LAST).is_file():
        raise CheckpointError(f"{run_dir}: nothing to resume ({rd.LAST} not found)")
    stored, info = rd.read_run(run_dir)
    train = dataclasses.replace(
        stored.train, max_time=config.train.max_time, precision=config.train.precision
    )
    return dataclasses.replace(stored, train=train), info


def _total_steps(job: Job, config: Config) -> tuple[int, int]:
    """``(steps per epoch, planned steps)`` of the training split."""
    per_epoch = len(
        epoch_batches(len(job.datasets["train"]), config.train.batch_size, seed=0, epoch=0)
    )
    return per_epoch, per_epoch * config.train.epochs


def fit(
    config: Config,
    run_dir: str | Path,
    task: TaskFactory,
    *,
    resume: bool = False,
    device: str = "auto",
) -> TrainSummary:
    """Train ``config`` into ``run_dir`` (or continue it with ``resume``); return the summary.

    Args:
        config: the loaded config (with ``--set`` overrides and ``--max-time`` applied).
        run_dir: the run directory.
        task: the job's factory (``pixelseg.tasks.registry.get_task(config.task)``).
        resume: continue from ``checkpoints/last.safetensors``.
        device: ``auto``, ``cpu``, ``cuda``...

    Raises:
        CheckpointError: ``resume`` without a resumable checkpoint in ``run_dir``.
        ConfigError: the early stopping metric is not a validation metric of the task, or the
            run's task is not ``task``.
        NonFiniteLossError: the loss became NaN/inf (the last good checkpoint is kept).
    """
    run_dir = Path(run_dir)
    writer = RunWriter(run_dir)
    log = RunLog(writer)
    info = None
    if resume:
        config, info = _resumed_config(config, run_dir)
    if config.task != task.name:
        raise ConfigError(f"task: the run is a {config.task!r} job, not {task.name!r}")
    train_cfg = config.train
    seed_everything(train_cfg.seed, deterministic=train_cfg.deterministic)
    job = task.build_job(config, ("train", "val"), info)
    model = job.model
    dev = resolve_device(device)
    precision = resolve_precision(train_cfg.precision, dev)
    autocast = autocast_factory(precision, dev)
    model.to(dev)
    if train_cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
    )
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    state = LoopState()
    if resume:
        restored = load_checkpoint(
            run_dir / rd.LAST, model, optimizer=optimizer, restore_rng_state=True
        )
        state = LoopState(**restored)
        log(
            f"resumed {run_dir} at epoch {state.epoch + 1}, batch {state.position}, "
            f"step {state.step}"
        )
    else:
        writer.json("config.json", config.to_dict())
        writer.json("run.json", job.info.to_dict())
        loss = job.info.loss
        log(f"loss: {loss['name']} (class weighting: {loss['weighting']}) — {loss['reason']}")
    clock = Clock(state.elapsed)
    budget = Budget(clock, train_cfg.max_time)
    checkpoints = CheckpointPolicy(
        writer, model, optimizer, clock=clock, every_s=train_cfg.checkpoint_every_s
    )
    schedule = ValidationSchedule(train_cfg.val_every)
    metric_name = train_cfg.early_stopping_metric
    if metric_name == "auto":
        metric_name = job.task.primary_metric
    stopping = EarlyStopping(metric_name, train_cfg.patience)
    train_set = SeededDataset(job.datasets["train"], seed=train_cfg.seed)
    steps_per_epoch, total_steps = _total_steps(job, config)
    val_loader = DataLoader(
        job.datasets["val"],
        batch_size=1,
        collate_fn=job.collate,
        num_workers=train_cfg.num_workers,
        generator=torch.Generator(),
    )
    log(
        f"device {dev}, precision {precision}, {len(train_set)} training images, "
        f"{len(job.datasets['val'])} validation images, {steps_per_epoch} steps per epoch, "
        f"model {config.model.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
        "parameters)"
    )

    def set_lr(step: int) -> None:
        spent = budget.fraction()
        progress = None if spent is None else max(step / max(1, total_steps), spent)
        factor = lr_factor(
            step,
            total_steps=total_steps,
            warmup_steps=train_cfg.warmup_steps,
            schedule=train_cfg.schedule,
            progress=progress,
        )
        for group in optimizer.param_groups:
            group["lr"] = train_cfg.lr * factor

    def after_step() -> bool:
        if checkpoints.due():
            checkpoints.save_last(state)
        return budget.exhausted()

    log(epoch_header(metric_name))
    budget_hit = False
    while state.epoch < train_cfg.epochs and not budget_hit:
        train_set.epoch = state.epoch
        batches = epoch_batches(
            len(train_set), train_cfg.batch_size, seed=train_cfg.seed, epoch=state.epoch
        )
        batches = batches[state.position :]
        # An own generator: DataLoader would otherwise draw its base seed from the global RNG,
        # and a resumed run (one extra loader) would then drift from an uninterrupted one.
        loader = DataLoader(
            generator=torch.Generator(),
            dataset=train_set,
            batch_sampler=batches,
            collate_fn=job.collate,
            num_workers=train_cfg.num_workers,
        )
        train_loss = train_one_epoch(
            model,
            job.task,
            loader,
            optimizer,
            state=state,
            set_lr=set_lr,
            autocast=autocast,
            device=dev,
            grad_clip=train_cfg.grad_clip,
            channels_last=train_cfg.channels_last,
            scaler=scaler,
            after_step=after_step,
            total=len(batches),
        )
        budget_hit = budget.exhausted()
        state.epoch += 1
        state.position = 0
        record: dict[str, Any] = {
            "epoch": state.epoch,
            "step": state.step,
            "images_seen": state.images_seen,
            "train_loss": train_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "train_seconds": clock.elapsed(),
        }
        better = False
        if schedule.due(state.epoch, last=budget_hit or state.epoch >= train_cfg.epochs):
            metrics = evaluate(
                model,
                job.task,
                val_loader,
                autocast=autocast,
                device=dev,
                channels_last=train_cfg.channels_last,
                total=len(val_loader),
            )
            if metric_name not in metrics:
                raise ConfigError(
                    f"train.early_stopping_metric: {metric_name!r} is not a validation metric of "
                    f"this task; choose from {', '.join(sorted(metrics))}"
                )
            value = float(metrics[metric_name])
            record.update({f"val_{k}": v for k, v in metrics.items()})
            better = improved(value, state.best_metric, metric_name)
            if better:
                state.best_metric, state.best_epoch = value, state.epoch
                state.epochs_without_improvement = 0
                checkpoints.save_best(state)
            else:
                state.epochs_without_improvement += 1
            state.history.append({"epoch": state.epoch, metric_name: value})
        writer.append_jsonl("metrics.jsonl", record)
        log(epoch_row(record, metric_name, better))
        checkpoints.save_last(state)
        if stopping.should_stop(state.epochs_without_improvement):
            log(f"early stopping: no improvement of {metric_name} for {train_cfg.patience} epochs")
            break
    if state.best_epoch > 0:
        # Post-processing thresholds are tuned on val with the best weights, then stored.
        load_checkpoint(run_dir / rd.BEST, model)
        job.task.after_training(model, job, writer)
    if budget_hit:
        log(f"time budget of {train_cfg.max_time:.0f} s reached after {state.step} steps")
    summary = TrainSummary(
        epochs=state.epoch,
        steps=state.step,
        images_seen=state.images_seen,
        train_seconds=state.elapsed,
        best_epoch=state.best_epoch,
        metric=metric_name,
        best_metric=state.best_metric,
        precision=precision,
        device=str(dev),
    )
    writer.json("summary.json", summary.to_dict())
    log(
        f"done: best {metric_name} {state.best_metric} at epoch {state.best_epoch}; "
        f"run directory {run_dir}"
    )
    return summary
