"""Encoders: torchvision and timm backbones returning five feature levels, with output stride by
dilation.

``create_encoder(name, ...)`` builds one: a name of :data:`ENCODERS` (torchvision) or
``"tu-<timm model>"`` (any timm model offering ``features_only``; see
:class:`~pixelseg.models.encoders.timm_encoder.TimmEncoder`). Every encoder follows
:class:`Encoder`'s contract (``out_channels``, ``strides``, ``output_stride``,
``forward(x) -> list[Tensor]``).
"""

from __future__ import annotations

from pathlib import Path

from pixelseg.errors import ConfigError
from pixelseg.models.encoders.base import Encoder, check_choice
from pixelseg.models.encoders.mobilenet import MobileNetV3Encoder
from pixelseg.models.encoders.resnet import RESNETS, ResNetEncoder
from pixelseg.models.encoders.timm_encoder import TIMM_PREFIX, TimmEncoder

__all__ = ["ENCODERS", "TIMM_PLACEHOLDER", "TIMM_PREFIX", "Encoder", "create_encoder"]

ENCODERS = (*RESNETS, "mobilenet_v3_large")
# How listings show the open-ended timm family: "tu-<timm model>".
TIMM_PLACEHOLDER = "<timm model>"


def create_encoder(
    name: str,
    *,
    in_channels: int = 3,
    output_stride: int = 32,
    norm: str = "batch",
    weights: str | Path | None = None,
    learned_stem: bool = True,
) -> Encoder:
    """Build a named encoder.

    Args:
        name: One of :data:`ENCODERS` (``resnet18``, ``resnet34``, ``resnet50``,
            ``mobilenet_v3_large``) or ``"tu-<timm model>"``, e.g. ``"tu-convnext_atto"``.
        in_channels: Input bands; other than 3 adapts the first convolution.
        output_stride: 8, 16 or 32: stride of the deepest feature level.
        norm: ``"batch"`` or ``"group"`` (GroupNorm replaces every BatchNorm).
        weights: ``None`` (random), ``"imagenet"`` (torchvision's weights; a clear
            :class:`~pixelseg.errors.PixelsegError` if they cannot be downloaded; timm's from the
            Hugging Face hub for ``tu-`` encoders) or the path of a local ``.safetensors``/``.pth``
            file holding the backbone's state dict.
        learned_stem: Only for ``tu-`` encoders whose first map is at stride 4: level 0 from a
            learned stride-2 stem (True; for decoders that read it, like U-Net) or the stride-4
            map upsampled, without parameters (False; for decoders that never read level 0).
            torchvision encoders ignore it.

    Returns:
        The encoder; ``forward`` maps ``(N, in_channels, H, W)`` to five feature maps.

    Raises:
        ConfigError: ``weights="imagenet"`` with ``norm="group"``: the pretrained BatchNorm
            statistics and affine parameters belong to BatchNorm, and copied into GroupNorm
            they give a mismatched network.
    """
    if weights == "imagenet" and norm == "group":
        raise ConfigError(
            "model: weights = 'imagenet' with norm = 'group' would copy BatchNorm statistics "
            "into GroupNorm layers, which then compute something else; use norm = 'batch' "
            "with pretrained weights (or no pretrained weights with GroupNorm)"
        )
    if name.startswith(TIMM_PREFIX) and len(name) > len(TIMM_PREFIX):
        return TimmEncoder(
            name[len(TIMM_PREFIX) :],
            in_channels=in_channels,
            output_stride=output_stride,
            norm=norm,
            weights=weights,
            learned_stem=learned_stem,
        )
    check_choice("encoder", name, ENCODERS)
    if name == "mobilenet_v3_large":
        return MobileNetV3Encoder(
            in_channels=in_channels, output_stride=output_stride, norm=norm, weights=weights
        )
    return ResNetEncoder(
        name, in_channels=in_channels, output_stride=output_stride, norm=norm, weights=weights
    )
