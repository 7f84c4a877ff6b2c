"""Padding an image for a model, in one place for every prediction path."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: Validation pads its images to a multiple of this (the data transforms' ``stride``), so
#: prediction does too: the same pixels then see the same context.
PAD_MULTIPLE = 32


def pad_for_model(image: torch.Tensor, multiple: int = PAD_MULTIPLE) -> torch.Tensor:
    """A ``(1, C, H', W')`` float32 batch of one normalised ``(C, H, W)`` image.

    Padded bottom/right to a multiple of ``multiple`` with zeros — the band mean, since the
    image is already normalised; crop the output back to ``(H, W)``.
    """
    return pad_batch(image[None], multiple)


def pad_batch(batch: torch.Tensor, multiple: int = PAD_MULTIPLE) -> torch.Tensor:
    """A ``(B, C, H, W)`` batch as float32, padded bottom/right to a multiple with zeros."""
    height, width = batch.shape[-2:]
    return F.pad(batch.float(), (0, (-width) % multiple, 0, (-height) % multiple))


@torch.no_grad()
def padded_probabilities(
    model: nn.Module, batch: torch.Tensor, autocast: Callable[[], AbstractContextManager[Any]]
) -> torch.Tensor:
    """``(B, K, H, W)`` float32 class probabilities (on the CPU) of a semantic model for a
    normalised ``(B, C, H, W)`` batch: padded as :func:`pad_batch`, softmax, cropped back."""
    height, width = batch.shape[-2:]
    device = next(model.parameters()).device
    with autocast():
        logits = model(pad_batch(batch).to(device))
    return logits.float()[:, :, :height, :width].softmax(1).cpu()


def class_argmax(maps: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """``maps.argmax(dim)`` (int64; the first class wins a tie) computed as one comparison per
    class over whole planes: torch's argmax over the class axis of a contiguous ``(K, H, W)``
    map reduces along a strided axis and took 10 % of a 512² prediction (17 ms vs 0.2 ms)."""
    planes = maps.movedim(dim, 0)
    if planes.shape[0] == 0:
        raise ValueError("class_argmax: no class channels")
    best = planes[0].clone()
    labels = torch.zeros(best.shape, dtype=torch.int64)
    for index in range(1, planes.shape[0]):
        better = planes[index] > best
        labels.masked_fill_(better, index)
        best = torch.maximum(best, planes[index])
    return labels
