"""``pixelseg train``: epochs, validation, best/last checkpoints, budget, resume, early stopping."""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from pixelseg.config import Config, load_config
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import load_checkpoint, save_checkpoint
from pixelseg.engine.console import RunLog, epoch_header, epoch_row
from pixelseg.engine.data_order import SeededDataset, epoch_batches
from pixelseg.engine.loop import LoopState, evaluate, train_one_epoch
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.schedule import lr_factor
from pixelseg.engine.setup import prepare_job
from pixelseg.engine.writer import RunWriter
from pixelseg.errors import CheckpointError, ConfigError


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def _improved(value: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return value < best if metric.endswith("loss") else value > best


def fit(
    config: Config, run_dir: str | Path, *, resume: bool = False, device: str = "auto"
) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` (or continue it with ``resume``); return the summary.

    Raises:
        CheckpointError: ``resume`` without a resumable checkpoint in ``run_dir``.
        NonFiniteLossError: the loss became NaN/inf (the last good checkpoint is kept).
    """
    run_dir = Path(run_dir)
    writer = RunWriter(run_dir)
    log = RunLog(writer)
    info = None
    if resume:
        if not (run_dir / rd.LAST).is_file():
            raise CheckpointError(f"{run_dir}: nothing to resume ({rd.LAST} not found)")
        stored, info = rd.read_run(run_dir)
        config = dataclasses.replace(
            stored,
            train=dataclasses.replace(
                stored.train, max_time=config.train.max_time, precision=config.train.precision
            ),
        )
    train_cfg = config.train
    seed_everything(train_cfg.seed, deterministic=train_cfg.deterministic)
    job = prepare_job(config, splits=("train", "val"), info=info)
    model, task = job.model, job.task
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
        state = LoopState(
            **load_checkpoint(run_dir / rd.LAST, model, optimizer=optimizer, restore_rng_state=True)
        )
        log(
            f"resumed {run_dir} at epoch {state.epoch + 1}, batch {state.position}, "
            f"step {state.step}"
        )
    else:
        writer.json("config.json", config.to_dict())
        writer.json("run.json", job.info.to_dict())
        loss = job.info.loss
        log(f"loss: {loss['name']} (class weighting: {loss['weighting']}) — {loss['reason']}")
    train_set = SeededDataset(job.datasets["train"], seed=train_cfg.seed)
    n_train = len(train_set)
    steps_per_epoch = len(epoch_batches(n_train, train_cfg.batch_size, seed=0, epoch=0))
    total_steps = steps_per_epoch * train_cfg.epochs
    val_loader = DataLoader(
        job.datasets["val"],
        batch_size=1,
        collate_fn=job.collate,
        num_workers=train_cfg.num_workers,
        generator=torch.Generator(),
    )
    log(
        f"device {dev}, precision {precision}, {n_train} training images, "
        f"{len(job.datasets['val'])} validation images, {steps_per_epoch} steps per epoch, "
        f"model {config.model.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
        "parameters)"
    )

    segment_start = time.perf_counter()
    elapsed_at_start = state.elapsed
    last_save = time.perf_counter()
    budget_hit = False

    def elapsed() -> float:
        return elapsed_at_start + time.perf_counter() - segment_start

    def set_lr(step: int) -> None:
        progress = None
        if train_cfg.max_time:
            progress = max(step / max(1, total_steps), elapsed() / train_cfg.max_time)
        factor = lr_factor(
            step,
            total_steps=total_steps,
            warmup_steps=train_cfg.warmup_steps,
            schedule=train_cfg.schedule,
            progress=progress,
        )
        for group in optimizer.param_groups:
            group["lr"] = train_cfg.lr * factor

    def save_last() -> None:
        state.elapsed = elapsed()
        if writer.enabled:
            save_checkpoint(
                run_dir / rd.LAST,
                model,
                optimizer=optimizer,
                state=dataclasses.asdict(state),
                with_rng=True,
            )

    def after_step() -> bool:
        nonlocal last_save, budget_hit
        if time.perf_counter() - last_save >= train_cfg.checkpoint_every_s:
            save_last()
            last_save = time.perf_counter()
        if train_cfg.max_time and elapsed() >= train_cfg.max_time:
            budget_hit = True
        return budget_hit

    metric_name = train_cfg.early_stopping_metric
    if metric_name == "auto":
        metric_name = task.primary_metric
    log(epoch_header(metric_name))
    while state.epoch < train_cfg.epochs and not budget_hit:
        train_set.epoch = state.epoch
        batches = epoch_batches(
            n_train, train_cfg.batch_size, seed=train_cfg.seed, epoch=state.epoch
        )[state.position :]
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
            task,
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
        state.epoch += 1
        state.position = 0
        record: dict[str, Any] = {
            "epoch": state.epoch,
            "step": state.step,
            "images_seen": state.images_seen,
            "train_loss": train_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "train_seconds": elapsed(),
        }
        last_epoch = budget_hit or state.epoch >= train_cfg.epochs
        improved = False
        if state.epoch % max(1, train_cfg.val_every) == 0 or last_epoch:
            metrics = evaluate(
                model,
                task,
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
            improved = _improved(value, state.best_metric, metric_name)
            if improved:
                state.best_metric, state.best_epoch = value, state.epoch
                state.epochs_without_improvement = 0
                if writer.enabled:
                    save_checkpoint(run_dir / rd.BEST, model, state=dataclasses.asdict(state))
            else:
                state.epochs_without_improvement += 1
            state.history.append({"epoch": state.epoch, metric_name: value})
        writer.append_jsonl("metrics.jsonl", record)
        log(epoch_row(record, metric_name, improved))
        save_last()
        last_save = time.perf_counter()
        if state.epochs_without_improvement >= train_cfg.patience:
            log(f"early stopping: no improvement of {metric_name} for {train_cfg.patience} epochs")
            break
    after_training = getattr(task, "after_training", None)
    if after_training is not None and state.best_epoch > 0:
        # Post-processing thresholds are tuned on val with the best weights, then stored.
        load_checkpoint(run_dir / rd.BEST, model)
        after_training(model, job, writer)
    if budget_hit:
        log(f"time budget of {train_cfg.max_time:.0f} s reached after {state.step} steps")
    summary = {
        "epochs": state.epoch,
        "steps": state.step,
        "images_seen": state.images_seen,
        "train_seconds": state.elapsed,
        "best_epoch": state.best_epoch,
        f"best_{metric_name}": state.best_metric,
        "precision": precision,
        "device": str(dev),
    }
    writer.json("summary.json", summary)
    log(
        f"done: best {metric_name} {state.best_metric} at epoch {state.best_epoch}; "
        f"run directory {run_dir}"
    )
    return summary


def train_command(
    config_path: str,
    *,
    out: str | None,
    overrides: list[str],
    resume: bool,
    max_time: float | None,
    precision: str | None,
    device: str,
) -> int:
    """The ``pixelseg train`` subcommand."""
    extra = list(overrides)
    if max_time is not None:
        extra.append(f"train.max_time={max_time}")
    if precision is not None:
        extra.append(f'train.precision="{precision}"')
    config = load_config(config_path, extra)
    run_dir = Path(out) if out else Path("runs") / Path(config_path).stem
    fit(config, run_dir, resume=resume, device=device)
    return 0
