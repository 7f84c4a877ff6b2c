"""``fit``: one config trained into a run directory by the pieces of the engine.

:func:`~pixelseg.engine.training.prepare_training` builds the run; this module drives it: the
epoch loop (:func:`~pixelseg.engine.loop.train_one_epoch`), validation when its schedule says
(:mod:`~pixelseg.engine.validation`), checkpoints when their policy says
(:mod:`~pixelseg.engine.checkpoint_policy`), the budget (:mod:`~pixelseg.engine.clock`), the
task's post-training work, and the summary with the time breakdown
(:mod:`~pixelseg.engine.timing`). The job comes from a
:class:`~pixelseg.engine.task.TaskFactory`; the engine never knows which one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from pixelseg.config import Config
from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import load_checkpoint
from pixelseg.engine.console import epoch_header, epoch_row
from pixelseg.engine.ddp import val_indices
from pixelseg.engine.describe import describe
from pixelseg.engine.distributed import any_rank, is_distributed, is_main_process, shutdown
from pixelseg.engine.loop import evaluate, train_one_epoch
from pixelseg.engine.schedule import lr_factor
from pixelseg.engine.summary import TrainSummary, finish
from pixelseg.engine.task import TaskFactory
from pixelseg.engine.training import (
    Training,
    prepare_training,
    seed_everything,
    validation_loader,
)
from pixelseg.engine.validation import improved
from pixelseg.errors import ConfigError

__all__ = ["TrainSummary", "fit", "seed_everything"]


def _set_lr(run: Training, step: int) -> None:
    """The learning rate of ``step``: warmup then decay over the planned steps or the budget."""
    cfg = run.config.train
    progress = step / max(1, run.total_steps)
    if run.budget.bounded:
        reserve = run.post_training_reserve() + (run.timed.reserve() if run.timed else 0.0)
        end = max(float(run.budget.max_time or 0.0) - reserve, 1e-9)
        progress = max(progress, run.clock.elapsed() / end)
    factor = lr_factor(
        step,
        progress=progress,
        warmup_steps=cfg.warmup_steps,
        warmup_fraction=cfg.warmup_fraction,
        schedule=cfg.schedule,
    )
    for group in run.optimizer.param_groups:
        group["lr"] = cfg.lr * factor


def _out_of_time(run: Training) -> bool:
    """True once the budget, less what the final validation and post-training need, is spent."""
    if not run.budget.bounded:
        return False
    reserve = run.post_training_reserve() + (run.timed.reserve() if run.timed else 0.0)
    return run.clock.elapsed() + reserve >= float(run.budget.max_time or 0.0)


def _validate(run: Training, record: dict[str, Any]) -> bool:
    """Validate now; update the best checkpoint and the counters; True when improved."""
    state, started = run.state, run.clock.elapsed()
    first_timed = run.timed is not None and not state.val_images
    limit = None
    if first_timed and not is_distributed():  # under DDP every rank validates its whole shard
        # Under a budget the first validation is cut where two of it would not fit the share;
        # the images it reached are the ones every later validation uses, so they compare.
        limit = run.config.train.val_share * float(run.budget.max_time or 0.0) / 2
    with run.ledger.track("validation"):
        metrics = evaluate(
            run.model,
            run.job.task,
            run.val_loader,
            autocast=run.autocast,
            device=run.device,
            channels_last=run.config.train.channels_last,
            total=len(run.val_loader),
            max_seconds=limit,
            indices=val_indices(run.val_loader),
        )
    if run.timed is not None:
        run.timed.record(run.clock.elapsed() - started, now=run.clock.elapsed())
    if first_timed:
        num_val = len(run.job.datasets["val"])
        state.val_images = int(metrics["num_images"])
        if state.val_images < num_val:
            run.val_loader = _subset_loader(run, state.val_images)
            with run.ledger.track("logging"):
                run.log(
                    f"validation: the first {state.val_images} of {num_val} val images fit "
                    f"{100 * run.config.train.val_share:g} % of the budget; later validations "
                    "use the same ones"
                )
    if run.metric not in metrics:
        raise ConfigError(
            f"train.early_stopping_metric: {run.metric!r} is not a validation metric of "
            f"this task; choose from {', '.join(sorted(metrics))}"
        )
    value = float(metrics[run.metric])
    record.update({f"val_{k}": v for k, v in metrics.items()})
    state.validations += 1
    better = improved(value, state.best_metric, run.metric)
    with run.ledger.track("checkpoints"):
        if better:
            state.best_metric, state.best_step = value, state.step
            state.best_epoch = int(record["epoch"])
            state.epochs_without_improvement = 0
            run.checkpoints.save_best(state)
        else:
            state.epochs_without_improvement += 1
    state.history.append(
        {"step": state.step, "epoch": record["epoch"], "seconds": run.clock.elapsed(),
         run.metric: value}
    )  # fmt: skip
    return better


def _log_record(run: Training, record: dict[str, Any], *, improved_now: bool) -> None:
    """Append ``record`` to ``metrics.jsonl`` and print its row."""
    with run.ledger.track("logging"):
        run.writer.append_jsonl("metrics.jsonl", record)
        run.log(epoch_row(record, run.metric, improved_now))
        if run.tensorboard is not None:
            run.tensorboard.add(record)


def _record(run: Training, event: str, train_loss: float | None) -> dict[str, Any]:
    state = run.state
    return {
        "event": event,
        "epoch": state.epoch + (0 if event == "epoch" else 1),
        "step": state.step,
        "images_seen": state.images_seen,
        "train_loss": train_loss,
        "lr": run.optimizer.param_groups[0]["lr"],
        "train_seconds": run.clock.elapsed(),
    }


def _subset_loader(run: Training, count: int) -> DataLoader:
    """A loader over the first ``count`` val images, like the run's own val loader."""
    return validation_loader(run.job, count, run.val_batch)


def _train(run: Training) -> None:
    """The epoch loop: steps, validations and checkpoints until the epochs or the budget end."""
    state, cfg = run.state, run.config.train

    def after_step() -> bool:
        if run.checkpoints.due():
            with run.ledger.track("checkpoints"):
                run.checkpoints.save_last(state)
        due = run.schedule.due_after_step(state.step) or (
            run.timed is not None and run.timed.due(run.clock.elapsed())
        )
        # Under DDP the ranks' clocks differ: any rank's "validate" or "out of time" holds for all.
        if any_rank(due) and not any_rank(_out_of_time(run)):
            record = _record(run, "validation", None)
            better = _validate(run, record)
            _log_record(run, record, improved_now=better)
            if run.stopping.should_stop(state.epochs_without_improvement):
                return True
        return any_rank(_out_of_time(run))

    if run.timed is not None and state.val_images:  # a resumed run keeps its val subset
        run.val_loader = _subset_loader(run, state.val_images)
    with run.ledger.track("logging"):
        run.log(epoch_header(run.metric))
    stopped = False
    while state.epoch < cfg.epochs and not stopped:
        run.sampler.epoch, run.sampler.position = state.epoch, state.position
        train_loss = train_one_epoch(
            run.network,
            run.job.task,
            run.train_loader,
            run.optimizer,
            state=state,
            set_lr=lambda step: _set_lr(run, step),
            autocast=run.autocast,
            device=run.device,
            ledger=run.ledger,
            grad_clip=cfg.grad_clip,
            channels_last=cfg.channels_last,
            scaler=run.scaler,
            after_step=after_step,
            total=run.sampler.steps_per_epoch - state.position,
            accumulate=cfg.accumulate_steps,
            processes=run.sampler.world,
        )
        patience_spent = run.stopping.should_stop(state.epochs_without_improvement)
        stopped = any_rank(_out_of_time(run)) or patience_spent
        complete = state.position >= run.sampler.steps_per_epoch
        if complete:
            state.epoch, state.position = state.epoch + 1, 0
        record = _record(run, "epoch", train_loss)
        record["epoch"] = state.epoch if complete else state.epoch + 1
        last = stopped or state.epoch >= cfg.epochs
        validated_now = bool(state.history) and state.history[-1]["step"] == state.step
        due = run.schedule.due(state.epoch, last=last) if run.timed is None else last
        better = False
        if due and not validated_now:
            better = _validate(run, record)
        _log_record(run, record, improved_now=better)
        with run.ledger.track("checkpoints"):
            run.checkpoints.save_last(state)
        if run.stopping.should_stop(state.epochs_without_improvement):
            with run.ledger.track("logging"):
                run.log(
                    f"early stopping: no improvement of {run.metric} for "
                    f"{run.stopping.patience} validations"
                )
            break
    if run.budget.bounded and _out_of_time(run):
        run.log(f"time budget of {cfg.max_time:.0f} s reached after {state.step} steps")


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
    run = prepare_training(config, Path(run_dir), task, resume=resume, device=device)
    if config.train.tensorboard and run.writer.enabled:  # a missing package said before training
        from pixelseg.engine.tensorboard import TensorBoardLog

        run.tensorboard = TensorBoardLog(run.writer.path("tensorboard"))
    state = run.state
    with run.ledger.track("logging"):
        if resume:
            run.log(
                f"resumed {run.run_dir} at epoch {state.epoch + 1}, batch {state.position}, "
                f"step {state.step}"
            )
        else:
            run.writer.json("config.json", run.config.to_dict())
            run.writer.json("run.json", run.job.info.to_dict())
            loss = run.job.info.loss
            run.log(
                f"loss: {loss['name']} (class weighting: {loss['weighting']}) — {loss['reason']}"
            )
        for line in describe(run):
            run.log(line)
    _train(run)
    if state.best_epoch > 0 and is_main_process():
        # Post-processing thresholds are tuned on val with the best weights, then stored (by
        # rank 0 alone: no collective in it, and only rank 0 writes).
        with run.ledger.track("post_training"):
            load_checkpoint(run.run_dir / rd.BEST, run.model)
            # 80 %: the task's own estimates are rough, and loading and writing count too.
            seconds = 0.8 * run.post_training_reserve() or None
            run.job.task.after_training(run.model, run.job, run.writer, seconds=seconds)
    summary = finish(run)
    shutdown()
    return summary
