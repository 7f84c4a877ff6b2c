"""Padding an image for a model, in one place for every prediction path."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Validation pads its images to a multiple of this (the data transforms' ``stride``), so
#: prediction does too: the same pixels then see the same context.
PAD_MULTIPLE = 32


def pad_for_model(image: torch.Tensor, multiple: int = PAD_MULTIPLE) -> torch.Tensor:
    """A ``(1, C, H', W')`` float32 batch of one normalised ``(C, H, W)`` image.

    Padded bottom/right to a multiple of ``multiple`` with zeros — the band mean, since the
    image is already normalised; crop the output back to ``(H, W)``.
    """
    height, width = image.shape[-2:]
    pad = (0, (-width) % multiple, 0, (-height) % multiple)
    return F.pad(image[None].float(), pad)
