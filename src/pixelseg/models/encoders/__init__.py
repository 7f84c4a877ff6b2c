"""Encoders: torchvision backbones returning five feature levels, with output stride by dilation.

``create_encoder(name, ...)`` builds one; every encoder follows :class:`Encoder`'s contract
(``out_channels``, ``strides``, ``output_stride``, ``forward(x) -> list[Tensor]``).
"""

from __future__ import annotations

from pathlib import Path

from pixelseg.models.encoders.base import Encoder, check_choice
from pixelseg.models.encoders.mobilenet import MobileNetV3Encoder
from pixelseg.models.encoders.resnet import RESNETS, ResNetEncoder

__all__ = ["ENCODERS", "Encoder", "create_encoder"]

ENCODERS = (*RESNETS, "mobilenet_v3_large")


def create_encoder(
    name: str,
    *,
    in_channels: int = 3,
    output_stride: int = 32,
    norm: str = "batch",
    weights: str | Path | None = None,
) -> Encoder:
    """Build a named encoder.

    Args:
        name: One of :data:`ENCODERS` (``resnet18``, ``resnet34``, ``resnet50``,
            ``mobilenet_v3_large``).
        in_channels: Input bands; other than 3 adapts the first convolution.
        output_stride: 8, 16 or 32: stride of the deepest feature level.
        norm: ``"batch"`` or ``"group"`` (GroupNorm replaces every BatchNorm).
        weights: ``None`` (random), ``"imagenet"`` (torchvision's weights; a clear
            :class:`~pixelseg.errors.PixelsegError` if they cannot be downloaded) or the path of a
            local ``.safetensors``/``.pth`` file holding the torchvision backbone's state dict.

    Returns:
        The encoder; ``forward`` maps ``(N, in_channels, H, W)`` to five feature maps.
    """
    check_choice("encoder", name, ENCODERS)
    if name == "mobilenet_v3_large":
        return MobileNetV3Encoder(
            in_channels=in_channels, output_stride=output_stride, norm=norm, weights=weights
        )
    return ResNetEncoder(
        name, in_channels=in_channels, output_stride=output_stride, norm=norm, weights=weights
    )
