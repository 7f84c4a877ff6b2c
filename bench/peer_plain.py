"""The plain-loop peer: the PyTorch loop a user writes in an afternoon around smp's U-Net.

Nothing of pixelseg is used here (only torch, numpy, PIL, segmentation_models_pytorch and the
standard library), so this peer measures what pixelseg's pipeline and defaults are worth against
doing it by hand. It is the loop issue 14 describes:

* its own data loading: every training image and mask read once with PIL (``convert("RGB")``, so
  ISBI's grayscale is repeated to 3 channels) and kept whole in memory as uint8; mask values
  mapped to classes by a lookup table, pixels outside an optional valid-region mask (DRIVE's
  field of view) set to the ignored label;
* preprocessing: ``image / 255`` (no mean/std statistics: the simplest thing that trains, and the
  same for every dataset);
* each step: 8 images drawn at random (with replacement), a random 256 × 256 crop of each (padded
  with 0 / the ignored label when an image is smaller), random horizontal flips (and vertical
  ones where the data has no "up"), batch 8;
* ``smp.Unet("resnet34", encoder_weights=None)``, AdamW at lr 1e-3 (PyTorch's default weight
  decay), loss ``smp.losses.DiceLoss("multiclass", ignore_index=...)`` +
  ``nn.CrossEntropyLoss(ignore_index=...)``, fp32, on the GPU when there is one, torch threads
  as the machine gives;
* no validation and no schedule: the wall-clock budget, counted from the start of the data
  loading (so its start-up counts) and checked after every step, ends the run; the final weights
  are the result.

:func:`train_plain` returns the model, a summary (steps, crops seen, wall seconds, a time
breakdown) and :meth:`PlainRun.predict`, which preprocesses a whole image the same way, pads it to
a multiple of 32 and returns the logits cropped back to the image.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

ENCODER = "resnet34"
CROP_SIZE = 256
BATCH_SIZE = 8
LR = 1e-3
STRIDE = 32  # the U-Net's input must be a multiple of its output stride
LOSS_NAME = "smp DiceLoss(multiclass) + nn.CrossEntropyLoss, unweighted"
PREPROCESSING = "image / 255 (RGB; grayscale repeated to 3 channels)"

#: ``(image path, mask path, valid-region mask path or None)`` of one training image.
Sample = tuple[str | Path, str | Path, str | Path | None]


def read_image(path: str | Path) -> np.ndarray:
    """``(H, W, 3)`` uint8: any image PIL opens, grayscale repeated to three channels."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def read_label(sample: Sample, labels: Mapping[str, Any]) -> np.ndarray:
    """``(H, W)`` uint8 class indices, ``labels["ignore_index"]`` for void and invalid pixels.

    Args:
        sample: the image's files (the image itself is not read).
        labels: ``values`` (stored mask value -> class index), ``ignore_index``.

    Raises:
        ValueError: an RGB mask (only index / value masks are supported here).
    """
    _, mask_path, valid_path = sample
    ignore = int(labels["ignore_index"])
    with Image.open(mask_path) as mask_file:
        mask = np.array(mask_file)
    if mask.ndim != 2:
        raise ValueError(f"{mask_path}: expected a single-channel mask, got shape {mask.shape}")
    lut = np.full(max(int(mask.max()), *map(int, labels["values"])) + 1, ignore, dtype=np.uint8)
    for value, index in labels["values"].items():
        lut[int(value)] = int(index)
    label = lut[mask]
    if valid_path is not None:
        with Image.open(valid_path) as valid_file:
            label[np.array(valid_file.convert("L")) == 0] = ignore
    return label


def to_input(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, H, W)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)


def random_crop(
    image: np.ndarray,
    label: np.ndarray,
    size: int,
    ignore: int,
    rng: np.random.Generator,
    vflip: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``size`` × ``size`` crop (padded when smaller), randomly flipped."""
    height, width = label.shape
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=ignore)
        height, width = label.shape
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    image = image[top : top + size, left : left + size]
    label = label[top : top + size, left : left + size]
    if rng.random() < 0.5:
        image, label = image[:, ::-1], label[:, ::-1]
    if vflip and rng.random() < 0.5:
        image, label = image[::-1], label[::-1]
    return image, label


class DiceCE(nn.Module):
    """``smp`` Dice (multiclass) + cross-entropy, both ignoring ``ignore_index``."""

    def __init__(self, ignore_index: int) -> None:
        super().__init__()
        self.dice = smp.losses.DiceLoss("multiclass", ignore_index=ignore_index)
        self.ce = nn.CrossEntropyLoss(ignore_index=ignore_index)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``(N, C, H, W)`` logits against ``(N, H, W)`` int64 labels."""
        return self.dice(logits, target) + self.ce(logits, target)


def time_breakdown(wall: float, **seconds: float) -> dict[str, Any]:
    """``wall_seconds`` and the ``seconds`` and ``fractions`` of the wall per category.

    The categories are the keyword arguments (``startup``, ``steps``: forward, backward and
    optimizer step, ``data``: sampling the crops), plus ``other``, the remainder (pixelseg's
    ``summary.json`` has the same layout).
    """
    parts = dict(seconds)
    parts["other"] = max(0.0, wall - sum(seconds.values()))
    total = max(wall, sum(parts.values()), 1e-9)
    return {
        "wall_seconds": wall,
        "seconds": parts,
        "fractions": {name: value / total for name, value in parts.items()},
    }


@dataclass
class PlainRun:
    """The trained model (final weights, eval mode) and what the loop did."""

    model: nn.Module
    summary: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def predict(self, image: np.ndarray) -> torch.Tensor:
        """``(C, H, W)`` float32 logits of a whole ``(H, W, 3)`` uint8 image.

        The image is preprocessed as in training, padded bottom/right with zeros to a multiple
        of 32, and the logits cropped back to ``(H, W)``.
        """
        height, width = image.shape[:2]
        x = to_input(np.ascontiguousarray(image)[None])
        x = F.pad(x, (0, (-width) % STRIDE, 0, (-height) % STRIDE))
        self.model.eval()
        device = next(self.model.parameters()).device
        return self.model(x.to(device))[0, :, :height, :width].float().cpu()


def train_plain(
    samples: Sequence[Sample],
    labels: Mapping[str, Any],
    *,
    budget: float,
    seed: int = 0,
    crop_size: int = CROP_SIZE,
    batch_size: int = BATCH_SIZE,
    vflip: bool = True,
    max_steps: int | None = None,
    log: Callable[[str], None] = print,
) -> PlainRun:
    """Train ``smp.Unet("resnet34")`` on ``samples`` for ``budget`` wall-clock seconds.

    Args:
        samples: the training split's ``(image, mask, valid mask or None)`` paths.
        labels: ``num_classes``, ``values`` (stored mask value -> class index; any other value
            is ignored) and ``ignore_index`` (a label outside ``0 .. num_classes - 1``).
        budget: seconds from the start of the data loading; checked after every step.
        seed: seeds torch (initialisation) and the crop sampler.
        crop_size: side of the square training crops.
        batch_size: crops per step.
        vflip: random vertical flips too (not for road scenes, which have an "up").
        max_steps: stop after this many steps at the latest (tests).

    Returns:
        The run; ``summary`` holds ``steps``, ``crops_seen``, ``wall_seconds``, ``startup_seconds``
        and ``time_breakdown`` (see :func:`time_breakdown`).

    Raises:
        FloatingPointError: the loss became NaN or infinite.
    """
    start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    num_classes, ignore = int(labels["num_classes"]), int(labels["ignore_index"])
    if not num_classes <= ignore <= 255:
        raise ValueError(f"ignore_index {ignore} must be in {num_classes}..255 (uint8 labels)")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    images = [read_image(image_path) for image_path, _, _ in samples]
    masks = [read_label(sample, labels) for sample in samples]
    for sample, image, mask in zip(samples, images, masks):
        if image.shape[:2] != mask.shape:
            raise ValueError(f"{sample[0]}: image {image.shape[:2]} but mask {mask.shape}")
    model = smp.Unet(ENCODER, encoder_weights=None, in_channels=3, classes=num_classes)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    loss_fn = DiceCE(ignore)
    startup = time.perf_counter() - start
    megabytes = sum(a.nbytes for a in images + masks) / 2**20
    log(
        f"plain loop: {len(images)} training images in memory ({megabytes:.0f} MiB uint8) "
        f"after {startup:.1f} s; smp.Unet({ENCODER}) "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, batch "
        f"{batch_size} of {crop_size} px crops"
    )
    model.train()
    steps = 0
    step_seconds = data_seconds = 0.0
    loss_value = math.nan
    while True:
        tick = time.perf_counter()
        picks = rng.integers(0, len(images), size=batch_size)
        crops = [random_crop(images[i], masks[i], crop_size, ignore, rng, vflip) for i in picks]
        x = to_input(np.stack([c[0] for c in crops])).to(device)
        y = torch.from_numpy(np.stack([c[1] for c in crops]).astype(np.int64)).to(device)
        tock = time.perf_counter()
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"plain loop: loss is {loss_value} at step {steps}")
        now = time.perf_counter()
        data_seconds += tock - tick
        step_seconds += now - tock
        steps += 1
        if steps % 50 == 0:
            log(f"plain loop: step {steps}, loss {loss_value:.4f}, {now - start:.0f} s")
        if now - start >= budget or (max_steps is not None and steps >= max_steps):
            break
    wall = time.perf_counter() - start
    summary = {
        "steps": steps,
        "crops_seen": steps * batch_size,
        "images_seen": steps * batch_size,
        "epochs": steps * batch_size / len(images),
        "wall_seconds": wall,
        "train_seconds": wall,
        "startup_seconds": startup,
        "step_seconds": step_seconds,
        "data_seconds": data_seconds,
        "seconds_per_step": step_seconds / steps,
        "data_seconds_per_step": data_seconds / steps,
        "time_breakdown": time_breakdown(
            wall, startup=startup, steps=step_seconds, data=data_seconds
        ),
        "final_loss": loss_value,
        "training_images": len(images),
        "batch_size": batch_size,
        "crop_size": crop_size,
        "vflip": vflip,
        "lr": LR,
        "preprocessing": PREPROCESSING,
        "precision": "fp32",
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
    }
    log(
        f"plain loop: {steps} steps, {steps * batch_size} crops in {wall:.1f} s "
        f"(start-up {startup:.1f} s, steps {step_seconds:.1f} s, data {data_seconds:.1f} s), "
        f"final loss {loss_value:.4f}"
    )
    return PlainRun(model=model.eval(), summary=summary)
