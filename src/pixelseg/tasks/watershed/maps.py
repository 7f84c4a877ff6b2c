"""The watershed task's network maps: class probabilities and distance of one image."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from pixelseg.config import WatershedConfig
from pixelseg.engine.padding import pad_for_model


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
        image: ``(C, H, W)`` normalised image (padded by
            :func:`~pixelseg.engine.padding.pad_for_model`).
        num_classes: class channels of the output (the distance channel follows).
        distance_head: whether the model has the distance channel.
        size: ``(height, width)`` to crop the maps to (the image's size before padding).
        autocast: mixed-precision context.

    Returns:
        ``(K, h, w)`` float32 probabilities and ``(h, w)`` float32 distance or None.
    """
    device = next(model.parameters()).device
    height, width = size if size is not None else tuple(image.shape[-2:])
    batch = pad_for_model(image).to(device)
    with autocast():
        outputs = model(batch)
    logits, distance = split_outputs(
        outputs.float(), num_classes=num_classes, distance_head=distance_head
    )
    probs = logits[0, :, :height, :width].softmax(0).cpu().numpy()
    if distance is None:
        return probs, None
    return probs, distance[0, :height, :width].cpu().numpy()
