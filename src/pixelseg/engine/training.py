"""Everything a training run holds, built once: job, model, optimizer, loaders, clock, policies.

:func:`prepare_training` turns a config (or a run directory to resume) into a
:class:`Training`; :mod:`pixelseg.engine.fit` then drives it. Start-up — building the job,
which checks the data and fills the caches — is charged to the time ledger's ``startup``.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from pixelseg.config import Config
from pixelseg.data.workers import loader_options, resolve_num_workers
from pixelseg.engine import run_dir as rd
from pixelseg.engine.allocator import keep_freed_memory
from pixelseg.engine.checkpoint import load_checkpoint
from pixelseg.engine.checkpoint_policy import CheckpointPolicy
from pixelseg.engine.clock import Budget, Clock
from pixelseg.engine.console import RunLog
from pixelseg.engine.data_order import (
    EpochSampler,
    SeededDataset,
    resolve_samples_per_epoch,
    same_size_batches,
)
from pixelseg.engine.ddp import wrap_model
from pixelseg.engine.distributed import (
    get_rank,
    get_world_size,
    init_from_environment,
    local_device,
    shard,
)
from pixelseg.engine.loop import LoopState
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.task import Job, TaskFactory
from pixelseg.engine.timing import TimeLedger
from pixelseg.engine.validation import EarlyStopping, TimedValidation, ValidationSchedule
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
class Training:
    """The pieces of one training run (see :func:`prepare_training`)."""

    config: Config
    run_dir: Path
    job: Job
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    state: LoopState
    writer: RunWriter
    log: RunLog
    device: torch.device
    precision: str
    autocast: Callable[[], AbstractContextManager]
    clock: Clock
    ledger: TimeLedger
    budget: Budget
    checkpoints: CheckpointPolicy
    sampler: EpochSampler
    #: What the training steps call: the model, in DistributedDataParallel under torchrun.
    network: torch.nn.Module
    train_loader: DataLoader
    val_loader: DataLoader
    val_batch: int
    metric: str
    stopping: EarlyStopping
    schedule: ValidationSchedule
    timed: TimedValidation | None
    #: TensorBoard event files (``train.tensorboard``), opened before the first step.
    tensorboard: Any = None

    @property
    def model(self) -> torch.nn.Module:
        """The job's model."""
        return self.job.model

    @property
    def total_steps(self) -> int:
        """Planned steps: epochs x steps per epoch (the budget may end the run sooner)."""
        return self.sampler.steps_per_epoch * self.config.train.epochs

    def post_training_reserve(self) -> float:
        """Seconds of the budget kept for the task's post-training work (0 without any)."""
        if not (self.budget.bounded and self.job.task.tunes_after_training):
            return 0.0
        return self.config.train.post_training_share * float(self.budget.max_time or 0.0)


def _resumed_config(config: Config, run_dir: Path) -> tuple[Config, rd.RunInfo, list[str]]:
    """The stored config of a run to resume (budget and precision from ``config``), and the
    changes of ``config`` that a resume cannot honour (every other differing key)."""
    if not (run_dir / rd.LAST).is_file():
        raise CheckpointError(f"{run_dir}: nothing to resume ({rd.LAST} not found)")
    stored, info = rd.read_run(run_dir)
    train = dataclasses.replace(
        stored.train, max_time=config.train.max_time, precision=config.train.precision
    )
    resumed = dataclasses.replace(stored, train=train)
    # ``source`` is the file the config was read from: another path, not another setting.
    changes = rd.config_changes(resumed.to_dict(), config.to_dict(), ignore=("source",))
    return resumed, info, changes


def _loaders(
    job: Job, config: Config, sampler: EpochSampler, seed: int, device: torch.device
) -> tuple[DataLoader, DataLoader]:
    """The training loader (one for the whole run: persistent workers) and the val loader."""
    workers = resolve_num_workers(config.train.num_workers, cuda=device.type == "cuda")
    options = loader_options(workers)
    # Own generators: DataLoader would otherwise draw its base seed from the global RNG, and a
    # resumed run would then drift from an uninterrupted one.
    train_loader = DataLoader(
        SeededDataset(job.datasets["train"], seed=seed),
        batch_sampler=sampler,
        collate_fn=job.collate,
        generator=torch.Generator(),
        **options,
    )
    val_set = job.datasets["val"]
    return train_loader, validation_loader(job, len(val_set), val_batch_size(config, device))


def val_batch_size(config: Config, device: torch.device) -> int:
    """``train.val_batch_size``, or (0 = auto) 1 on the CPU and 4 on CUDA.

    Measured on this project's 2-core CPU: batching whole images did not help (DRIVE, 5 images:
    1.9-2.1 s at batch 1 against 2.3-2.5 s at batch 4), and DSB2018's images of many sizes,
    padded to the largest of each batch, took 13-14 s against 4.7-5.3 s for 8 images.
    """
    if config.train.val_batch_size > 0:
        return config.train.val_batch_size
    return 4 if device.type == "cuda" else 1


def validation_loader(job: Job, count: int, batch_size: int) -> DataLoader:
    """The first ``count`` val images, whole, in batches of one image size (no worker: the
    val pass is short, and a worker would compete with it for the cores); under DDP this
    rank's share of those batches."""
    return DataLoader(
        job.datasets["val"],
        batch_sampler=shard(same_size_batches(job.datasets["val"], count, batch_size)),
        collate_fn=job.collate,
    )


def prepare_training(
    config: Config, run_dir: Path, task: TaskFactory, *, resume: bool, device: str
) -> Training:
    """Build the run: job (checks the data), model on its device, optimizer, state, loaders.

    Raises:
        CheckpointError: ``resume`` without a resumable checkpoint in ``run_dir``.
        ConfigError: the run's task is not ``task``.
    """
    ledger = TimeLedger()
    with ledger.track("startup"):
        writer = RunWriter(run_dir)
        log = RunLog(writer)
        info = None
        if resume:
            config, info, ignored = _resumed_config(config, run_dir)
            if ignored:
                log(
                    "warning: --resume continues the run as it was configured; ignored: "
                    + "; ".join(ignored)
                    + " (only train.max_time and train.precision may change: start a new run "
                    "for the rest)"
                )
        if config.task != task.name:
            raise ConfigError(f"task: the run is a {config.task!r} job, not {task.name!r}")
        train_cfg = config.train
        keep_freed_memory()
        dev = resolve_device(device)
        init_from_environment(dev, timeout_s=train_cfg.ddp_timeout_s)
        dev = local_device(dev)
        seed_everything(train_cfg.seed, deterministic=train_cfg.deterministic)
        job = task.build_job(config, ("train", "val"), info)
        precision = resolve_precision(train_cfg.precision, dev)
        job.model.to(dev)
        if train_cfg.channels_last:
            job.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        optimizer = torch.optim.AdamW(
            job.model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
        )
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        state = LoopState()
        if resume:
            restored = load_checkpoint(
                run_dir / rd.LAST,
                job.model,
                optimizer=optimizer,
                restore_rng_state=True,
                scaler=scaler,
            )
            state = LoopState.from_dict(restored)
        num_train = len(job.datasets["train"])
        sampler = EpochSampler(
            num_train, 0, train_cfg.batch_size, seed=train_cfg.seed, rank=get_rank(),
            world=get_world_size(), accumulate=train_cfg.accumulate_steps,
        )  # fmt: skip
        if not state.samples_per_epoch:
            state.samples_per_epoch = resolve_samples_per_epoch(
                train_cfg.samples_per_epoch, num_samples=num_train, batch_size=sampler.global_batch
            )
        global_batch = sampler.global_batch
        if train_cfg.batch_size < global_batch and state.samples_per_epoch < global_batch:
            raise ConfigError(
                f"train.samples_per_epoch: {state.samples_per_epoch} draws do not fill one global "
                f"batch of {sampler.global_batch} ({sampler.world} processes x "
                f"{train_cfg.batch_size} x {sampler.accumulate} accumulated)"
            )
        sampler.samples_per_epoch = state.samples_per_epoch
        network = wrap_model(job.model, config, dev)
        train_loader, val_loader = _loaders(job, config, sampler, train_cfg.seed, dev)
    # The ledger of a resumed run continues the recorded one, start-up included, and the run's
    # clock counts this start-up too: the budget covers everything after the command starts.
    startup_seconds = ledger.spent["startup"]
    spent = dict(state.time_spent)
    for category, seconds in ledger.spent.items():
        spent[category] = spent.get(category, 0.0) + seconds
    state.time_spent = spent
    ledger = TimeLedger(state.time_spent)
    clock = Clock(state.elapsed + startup_seconds)
    budget = Budget(clock, train_cfg.max_time)
    metric = train_cfg.early_stopping_metric
    if metric == "auto":
        metric = job.task.primary_metric
    timed = None
    if budget.bounded:
        timed = TimedValidation(float(budget.max_time or 0.0), train_cfg.val_share)
    return Training(
        config=config,
        run_dir=run_dir,
        job=job,
        optimizer=optimizer,
        scaler=scaler,
        state=state,
        writer=writer,
        log=log,
        device=dev,
        precision=precision,
        autocast=autocast_factory(precision, dev),
        clock=clock,
        ledger=ledger,
        budget=budget,
        checkpoints=CheckpointPolicy(
            writer,
            job.model,
            optimizer,
            clock=clock,
            every_s=train_cfg.checkpoint_every_s,
            scaler=scaler,
        ),
        sampler=sampler,
        network=network,
        train_loader=train_loader,
        val_loader=val_loader,
        val_batch=val_batch_size(config, dev),
        metric=metric,
        stopping=EarlyStopping.for_run(metric, train_cfg.patience, budget=train_cfg.max_time),
        schedule=ValidationSchedule(train_cfg.val_every, train_cfg.val_every_steps),
        timed=timed,
    )
