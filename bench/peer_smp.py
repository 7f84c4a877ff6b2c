"""The peer: ``segmentation_models_pytorch.Unet("resnet34")`` trained by a plain PyTorch loop.

What users run today, given everything pixelseg's own run gets so the comparison is about the
model and its defaults, not the plumbing:

* the same crops: pixelseg's training dataset, in the same per-epoch order
  (:func:`~pixelseg.engine.data_order.epoch_draws`) with the same seeded augmentation
  (:class:`~pixelseg.engine.data_order.SeededDataset`), batch size and crop size;
* the same optimiser: AdamW with the config's learning rate and weight decay, the same warmup +
  poly schedule as a function of the elapsed fraction of the budget, the same gradient clipping;
* the same precision (``train.precision``, resolved as for pixelseg) and channels-last;
* the same wall-clock budget, validation after every epoch counted inside it (logged only), the
  final weights evaluated — as for pixelseg's rows, whose ``last`` checkpoint is evaluated;
* the loss of the issue: ``smp.losses.DiceLoss(mode="multiclass")`` + ``nn.CrossEntropyLoss``,
  unweighted, both ignoring the void label;
* evaluated identically: pixelseg's :class:`~pixelseg.inference.predictor.Predictor` and
  the semantic task's ``evaluate`` on the same validation images.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from pixelseg.config import Config
from pixelseg.data.build import build_datasets, collate_semantic
from pixelseg.data.workers import resolve_num_workers
from pixelseg.engine.data_order import SeededDataset, epoch_draws, resolve_samples_per_epoch
from pixelseg.engine.fit import seed_everything
from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
from pixelseg.engine.run_dir import RunInfo
from pixelseg.engine.schedule import lr_factor
from pixelseg.metrics.confusion import ConfusionMatrix

ENCODER = "resnet34"
LOSS_NAME = "smp DiceLoss(multiclass) + nn.CrossEntropyLoss, unweighted"


def build_peer_model(*, in_channels: int, num_classes: int) -> nn.Module:
    """``smp.Unet("resnet34", encoder_weights=None)``: random init, as pixelseg's runs."""
    import segmentation_models_pytorch as smp

    return smp.Unet(ENCODER, encoder_weights=None, in_channels=in_channels, classes=num_classes)  # type: ignore[no-any-return]


class PeerLoss(nn.Module):
    """Dice + cross-entropy as an smp user writes it.

    Shape:
        - logits: ``(N, C, H, W)``; target: ``(N, H, W)`` class indices or ``ignore_index``.
    """

    def __init__(self, *, ignore_index: int) -> None:
        import segmentation_models_pytorch as smp

        super().__init__()
        self.dice = smp.losses.DiceLoss(mode="multiclass", ignore_index=ignore_index)
        self.ce = nn.CrossEntropyLoss(ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss."""
        return self.dice(logits, target) + self.ce(logits, target)


@dataclass
class PeerRun:
    """A trained peer: its best weights loaded, its datasets, and what the loop did."""

    model: nn.Module
    info: RunInfo
    datasets: dict[str, Any]
    summary: dict[str, Any]


@torch.no_grad()
def _validate(
    model: nn.Module,
    loader: DataLoader,
    *,
    num_classes: int,
    ignore_index: int,
    autocast: Callable[[], Any],
    device: torch.device,
    channels_last: bool,
) -> float:
    """Validation mIoU (argmax over the padded whole images), to pick the best epoch."""
    model.eval()
    confusion = ConfusionMatrix(num_classes, ignore_index=ignore_index)
    for batch in loader:
        images = batch.images.to(device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast():
            logits = model(images)
        confusion.update(logits.float().argmax(1).cpu(), batch.masks)
    model.train()
    return float(confusion.compute()["miou"])


def train_peer(
    config: Config, *, log: Callable[[str], None] = print, device: str = "auto"
) -> PeerRun:
    """Train the peer under ``config.train`` (``max_time`` is the budget) and return it.

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    train_cfg = config.train
    seed_everything(train_cfg.seed, deterministic=train_cfg.deterministic)
    datasets: dict[str, Any] = dict(build_datasets(config, ("train", "val")))
    train_data = datasets["train"]
    classmap = train_data.classmap
    num_classes, ignore_index = classmap.num_classes, classmap.ignore_index
    model = build_peer_model(in_channels=train_data.in_channels, num_classes=num_classes)
    dev = resolve_device(device)
    precision = resolve_precision(train_cfg.precision, dev)
    autocast = autocast_factory(precision, dev)
    model.to(dev)
    if train_cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
    )
    loss_fn = PeerLoss(ignore_index=ignore_index)
    train_set = SeededDataset(train_data, seed=train_cfg.seed)
    n_train = len(train_set)
    samples_per_epoch = resolve_samples_per_epoch(
        train_cfg.samples_per_epoch, num_samples=n_train, batch_size=train_cfg.batch_size
    )
    steps_per_epoch = len(
        epoch_draws(n_train, samples_per_epoch, train_cfg.batch_size, seed=0, epoch=0)
    )
    total_steps = steps_per_epoch * train_cfg.epochs
    val_loader = DataLoader(
        datasets["val"],
        batch_size=1,
        collate_fn=collate_semantic,
        num_workers=resolve_num_workers(train_cfg.num_workers),
    )
    log(
        f"peer smp.Unet({ENCODER}): {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M "
        f"parameters, precision {precision}, {n_train} training images, "
        f"{steps_per_epoch} steps per epoch"
    )
    step = images_seen = epoch = 0
    best_miou, best_epoch = -math.inf, -1
    epochs_without_improvement = 0
    budget = train_cfg.max_time
    start = time.perf_counter()
    budget_hit = False
    model.train()
    while epoch < train_cfg.epochs and not budget_hit:
        train_set.epoch = epoch
        batches = epoch_draws(
            n_train, samples_per_epoch, train_cfg.batch_size, seed=train_cfg.seed, epoch=epoch
        )
        loader = DataLoader(
            train_set,
            batch_sampler=batches,
            collate_fn=collate_semantic,
            num_workers=resolve_num_workers(train_cfg.num_workers),
            generator=torch.Generator(),
        )
        for batch in loader:
            images, masks = batch.images.to(dev), batch.masks.to(dev)
            if train_cfg.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            elapsed = time.perf_counter() - start
            progress = max(step / total_steps, elapsed / budget) if budget else None
            factor = lr_factor(
                step,
                progress=step / total_steps if progress is None else progress,
                warmup_steps=train_cfg.warmup_steps,
                warmup_fraction=train_cfg.warmup_fraction,
                schedule=train_cfg.schedule,
            )
            for group in optimizer.param_groups:
                group["lr"] = train_cfg.lr * factor
            with autocast():
                logits = model(images)
            loss = loss_fn(logits.float(), masks)
            if not math.isfinite(float(loss.detach())):
                raise FloatingPointError(f"peer loss is {float(loss)} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train_cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
            optimizer.step()
            step += 1
            images_seen += len(batch.ids)
            if budget and time.perf_counter() - start >= budget:
                budget_hit = True
                break
        miou = _validate(
            model,
            val_loader,
            num_classes=num_classes,
            ignore_index=ignore_index,
            autocast=autocast,
            device=dev,
            channels_last=train_cfg.channels_last,
        )
        epoch += 1
        log(f"peer epoch {epoch}: step {step}, val mIoU {miou:.4f}")
        if miou > best_miou:
            best_miou, best_epoch = miou, epoch
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        # The same rule as pixelseg's: patience is off under a budget unless set.
        if train_cfg.patience is not None and epochs_without_improvement >= train_cfg.patience:
            break
    train_seconds = time.perf_counter() - start
    # The final weights are evaluated (as for pixelseg's rows): picking the best epoch on the
    # split that is then reported would tune on it.
    info = RunInfo(
        task="semantic",
        class_names=list(classmap.classes),
        palette=[list(c) for c in classmap.palette],
        ignore_index=ignore_index,
        normalizer=train_data.normalizer.to_dict(),
        model={"name": f"smp.Unet({ENCODER})", "encoder_weights": None},
        in_channels=train_data.in_channels,
        loss={"name": LOSS_NAME, "weighting": "none", "reason": "the issue's peer recipe"},
    )
    summary = {
        "epochs": epoch,
        "steps": step,
        "images_seen": images_seen,
        "train_seconds": train_seconds,
        "best_epoch": best_epoch,
        "best_miou": best_miou,
        "precision": precision,
        "device": str(dev),
    }
    return PeerRun(model=model.eval(), info=info, datasets=datasets, summary=summary)
