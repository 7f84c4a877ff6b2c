"""The watershed task's network maps: class probabilities and distance of one image."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from pixelseg.config import WatershedConfig
from pixelseg.engine.padding import pad_batch


def settings_from_dict(raw: dict[str, Any]) -> WatershedConfig:
    """A :class:`WatershedConfig` from its JSON form (lists back to tuples)."""
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return WatershedConfig(**values)


def split_outputs(
    outputs: torch.Tensor, *, num_classes: int, distance_head: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Class logits ``(N, K, H, W)`` and the distance ``(N, H, W)`` in [0, 1] (or None)."""
    logits = outputs[:, :num_classes]
    distance = torch.sigmoid(outputs[:, num_classes].float()) if distance_head else None
    return logits, distance


@torch.no_grad()
def predict_maps(
    model: nn.Module,
    image: torch.Tensor,
    *,
    num_classes: int,
    distance_head: bool,
    size: tuple[int, int] | None = None,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities and distance of one normalised image.

    Args:
        model: the trained model, in eval mode, on its device.
        image: ``(C, H, W)`` normalised image (padded as
            :func:`~pixelseg.engine.padding.pad_batch` says).
        num_classes: class channels of the output (the distance channel follows).
        distance_head: whether the model has the distance channel.
        size: ``(height, width)`` to crop the maps to (the image's size before padding).
        autocast: mixed-precision context.

    Returns:
        ``(K, h, w)`` float32 probabilities and ``(h, w)`` float32 distance or None.
    """
    height, width = size if size is not None else tuple(image.shape[-2:])
    maps = dense_maps(
        model, image[None], num_classes=num_classes, distance_head=distance_head, autocast=autocast
    )[0, :, :height, :width].numpy()
    return maps[:num_classes], maps[num_classes] if distance_head else None


@torch.no_grad()
def dense_maps(
    model: nn.Module,
    batch: torch.Tensor,
    *,
    num_classes: int,
    distance_head: bool,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> torch.Tensor:
    """``(B, K[+1], h, w)`` float32 maps (on the CPU) of a normalised ``(B, C, h, w)`` batch.

    The ``K`` class probabilities, then the distance in [0, 1] when the model has the distance
    head: maps that tiles can blend and test-time augmentation can average (a flip of the image
    flips both). Padded as :func:`~pixelseg.engine.padding.pad_batch`, cropped back.
    """
    height, width = batch.shape[-2:]
    device = next(model.parameters()).device
    with autocast():
        outputs = model(pad_batch(batch).to(device))
    logits, distance = split_outputs(
        outputs.float()[..., :height, :width], num_classes=num_classes, distance_head=distance_head
    )
    probs = logits.softmax(1)
    maps = probs if distance is None else torch.cat([probs, distance[:, None]], 1)
    return maps.cpu()
