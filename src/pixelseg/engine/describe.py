"""The log lines that open a run: device, model, data, global batch, schedule, validation."""

from __future__ import annotations

from typing import Any

from pixelseg.engine.allocator import heap_setting
from pixelseg.engine.training import Training


def describe(training: Training) -> list[str]:
    """The log lines that say how the run will train (batch, learning rate, sampling...)."""
    cfg = training.config.train
    job, sampler = training.job, training.sampler
    model = training.model
    lines = [
        f"device {training.device}, precision {training.precision}, model "
        f"{training.config.model.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
        f"parameters), {len(job.datasets['train'])} training images, "
        f"{len(job.datasets['val'])} validation images",
        f"global batch {sampler.global_batch} ({sampler.world} process(es) x "
        f"{cfg.batch_size} x {sampler.accumulate} accumulated) of {cfg.crop_size} px crops; "
        f"AdamW lr {cfg.lr:g} (used as given at any global batch), weight decay "
        f"{cfg.weight_decay:g}; warmup "
        + (f"{cfg.warmup_steps} steps" if cfg.warmup_steps else f"{100 * cfg.warmup_fraction:g} %")
        + f" of the run, then {cfg.schedule} decay"
        + (" over the time budget" if training.budget.bounded else ""),
        f"epoch = {sampler.samples_per_epoch} crops drawn with replacement "
        f"({sampler.steps_per_epoch} steps)",
    ]
    sampling: Any = getattr(job.datasets["train"], "crop_sampling", None)
    if sampling:
        lines.append(f"crop sampling: {sampling.get('reason', sampling)}")
    if training.timed is not None:
        lines.append(
            f"validation: at most {100 * cfg.val_share:g} % of the {training.budget.max_time:g} s "
            "budget (first at half of it), and after the last step; the budget ends the run"
            + (
                f" (early stopping after {training.stopping.patience} validations)"
                if training.stopping.patience
                else ""
            )
        )
    elif training.schedule.every_steps:
        lines.append(f"validation every {training.schedule.every_steps} steps and at the end")
    else:
        lines.append(f"validation every {max(1, cfg.val_every)} epoch(s)")
    heap = heap_setting()
    if heap:
        lines.append(heap)
    return lines
