"""The plain training loop: one epoch of steps, and evaluation. It never knows the job."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from pixelseg.engine.distributed import is_distributed, sum_over_ranks
from pixelseg.engine.progress import progress_bar
from pixelseg.engine.task import Task
from pixelseg.engine.timing import TimeLedger
from pixelseg.errors import PixelsegError
from pixelseg.structures import Batch


class NonFiniteLossError(PixelsegError):
    """The loss became NaN or infinite; the message names the step."""


@dataclass
class LoopState:
    """Where training is; saved in every checkpoint so a killed run resumes exactly.

    Attributes:
        epoch: current epoch (0-based).
        position: batches of this epoch already consumed.
        step: optimizer steps taken over the whole run.
        images_seen: training crops processed.
        samples_per_epoch: draws per epoch (fixed at the start of the run).
        best_metric: best validation value of the primary metric so far.
        best_epoch: epoch (1-based, the one running) of ``best_metric``.
        best_step: step of ``best_metric``.
        epochs_without_improvement: validations without improvement, for early stopping.
        elapsed: wall seconds of the run so far (summed over resumes).
        validations: validations run.
        val_images: val images a validation uses under a budget (0: all; see
            :func:`~pixelseg.engine.validation.images_that_fit`).
        time_spent: seconds per category (see :mod:`pixelseg.engine.timing`).
        history: ``{"step", "epoch", "seconds", <metric>}`` per validation.
    """

    epoch: int = 0
    position: int = 0
    step: int = 0
    images_seen: int = 0
    samples_per_epoch: int = 0
    best_metric: float | None = None
    best_epoch: int = -1
    best_step: int = -1
    epochs_without_improvement: int = 0
    elapsed: float = 0.0
    validations: int = 0
    val_images: int = 0
    time_spent: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LoopState:
        """The state a checkpoint recorded (keys of older pixelseg versions tolerated)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def move_batch(batch: Batch, device: torch.device, channels_last: bool) -> Batch:
    """Move a batch to ``device`` (channels-last images when asked)."""
    batch = batch.to(device)
    if channels_last and batch.images.dim() == 4:
        batch.images = batch.images.contiguous(memory_format=torch.channels_last)
    return batch


def train_one_epoch(
    model: nn.Module,
    task: Task,
    batches: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    *,
    state: LoopState,
    set_lr: Callable[[int], None],
    autocast: Callable[[], AbstractContextManager],
    device: torch.device,
    ledger: TimeLedger | None = None,
    grad_clip: float = 0.0,
    channels_last: bool = False,
    scaler: torch.amp.GradScaler | None = None,
    after_step: Callable[[], bool] | None = None,
    total: int | None = None,
    accumulate: int = 1,
    processes: int = 1,
) -> float:
    """Train over ``batches``, updating ``state`` after every step.

    Waiting for a batch is charged to ``ledger``'s ``data`` (when given), the step (forward,
    backward, optimizer, the loss read back) to ``steps``.

    Args:
        after_step: called after each step (checkpointing, validation, budget); returning True
            ends the epoch early.
        total: number of optimizer steps, for the progress bar.
        accumulate: micro-batches (loader batches) per optimizer step.
        processes: DDP processes, each taking its own micro-batches (``images_seen`` counts
            them all).

    Returns:
        The mean training loss of the steps run.

    Raises:
        NonFiniteLossError: on a NaN or infinite loss, before the optimizer applies it.
    """
    model.train()
    ledger = ledger if ledger is not None else TimeLedger()
    losses: list[float] = []
    with ledger.track("data"):
        iterator = iter(batches)
    with progress_bar(f"epoch {state.epoch + 1}", total=total) as advance:
        while True:
            with ledger.track("data"):
                micro = [b for b in (next(iterator, None) for _ in range(accumulate)) if b]
                if not micro:
                    break
                micro = [move_batch(batch, device, channels_last) for batch in micro]
            with ledger.track("steps"):
                value = _step(
                    model, task, micro, optimizer, state, set_lr, autocast, grad_clip, scaler
                )
            losses.append(value)
            state.step += 1
            state.position += 1
            state.images_seen += sum(len(batch.ids) for batch in micro) * processes
            advance(loss=value)
            if after_step is not None and after_step():
                break
            if not model.training:  # a validation inside after_step switched to eval mode
                model.train()
    return sum(losses) / max(1, len(losses))


def _step(
    model: nn.Module,
    task: Task,
    micro: list[Batch],
    optimizer: torch.optim.Optimizer,
    state: LoopState,
    set_lr: Callable[[int], None],
    autocast: Callable[[], AbstractContextManager],
    grad_clip: float,
    scaler: torch.amp.GradScaler | None,
) -> float:
    """One optimizer step on the micro-batches ``micro`` (their gradients summed, each loss
    divided by their number; a DDP model syncs gradients on the last one only); the mean loss
    as a float."""
    set_lr(state.step)
    optimizer.zero_grad(set_to_none=True)
    values = []
    no_sync = getattr(model, "no_sync", None)  # DistributedDataParallel's
    for index, batch in enumerate(micro):
        last = index == len(micro) - 1
        syncing = nullcontext() if last or no_sync is None else no_sync()
        with syncing:
            with autocast():
                outputs = task.step(model, batch)
            loss = outputs["loss"]
            value = float(loss.detach())
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"loss is {value} at step {state.step} (epoch {state.epoch + 1}, batch "
                    f"{state.position}); the last good checkpoint is kept: lower train.lr, or "
                    "train in fp32 (--precision fp32)"
                )
            values.append(value)
            scaled = loss / len(micro)
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return sum(values) / len(values)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    task: Task,
    batches: Iterable[Batch],
    *,
    autocast: Callable[[], AbstractContextManager],
    device: torch.device,
    channels_last: bool = False,
    total: int | None = None,
    max_seconds: float | None = None,
    indices: list[int] | None = None,
) -> dict[str, Any]:
    """Run the task over ``batches`` in eval mode and return its metrics plus ``loss``.

    With ``max_seconds`` the pass stops after the batch that crosses it (at least one batch);
    ``num_images`` says how many images were seen. The model's training mode is restored.
    Under DDP each rank passes its own shard of the images (``indices``: their places in the
    split, in the order ``batches`` yields them); the metrics are then combined over the ranks
    (summed counts, gathered per-image records in split order), as one process would compute
    them, and ``loss`` and ``num_images`` cover every rank.
    """
    was_training = model.training
    model.eval()
    metrics = task.make_metrics()
    metrics.reset()
    losses: list[float] = []
    start = time.perf_counter()
    count = 0
    with progress_bar("validate", total=total) as advance:
        for batch in batches:
            batch = move_batch(batch, device, channels_last)
            with autocast():
                outputs = task.step(model, batch)
            losses.append(float(outputs["loss"]))
            task.update_metrics(metrics, outputs, batch)
            count += len(batch.ids)
            advance()
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                break
    model.train(was_training)
    loss_sum, batches_run = sum(losses), float(len(losses))
    if is_distributed():
        metrics.sync(indices or [])
        loss_sum, batches_run, count_all = sum_over_ranks([loss_sum, batches_run, count])
        count = int(count_all)
    result = dict(metrics.compute())
    result["loss"] = loss_sum / max(1, batches_run)
    result["num_images"] = count
    result["images_per_second"] = count / max(time.perf_counter() - start, 1e-9)
    return result
