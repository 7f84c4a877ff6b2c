"""ResNet-18/34/50 encoders from torchvision, with pixelseg's own dilation for every depth."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn
from torchvision import models

from pixelseg.models.encoders.base import (
    Encoder,
    adapt_first_conv,
    apply_output_stride,
    check_choice,
    convert_to_group_norm,
    fetch_imagenet_state_dict,
    level_strides,
    load_backbone_weights,
)

# name -> (torchvision builder, ImageNet weights, channels of the five levels)
RESNETS = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, (64, 64, 128, 256, 512)),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1, (64, 64, 128, 256, 512)),
    "resnet50": (
        models.resnet50,
        models.ResNet50_Weights.IMAGENET1K_V2,
        (64, 256, 512, 1024, 2048),
    ),
}


class ResNetEncoder(Encoder):
    """A torchvision ResNet without its classifier, returning the stem and the four stages.

    Submodule names match torchvision's (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), so a
    torchvision state dict loads as is.

    Args:
        name: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        in_channels: Input bands.
        output_stride: 8, 16 or 32; the last stages are dilated instead of strided.
        norm: ``"batch"`` or ``"group"``.
        weights: ``None``, ``"imagenet"`` or a local ``.safetensors``/``.pth`` file.
    """

    def __init__(
        self,
        name: str,
        *,
        in_channels: int = 3,
        output_stride: int = 32,
        norm: str = "batch",
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        check_choice("encoder", name, tuple(RESNETS))
        check_choice("norm", norm, ("batch", "group"))
        builder, imagenet_weights, channels = RESNETS[name]
        backbone = builder(weights=None)
        self.conv1: nn.Conv2d = backbone.conv1
        self.bn1 = backbone.bn1
        self.relu = backbone.relu
        self.maxpool = backbone.maxpool
        self.layer1 = backbone.layer1
        self.layer2 = backbone.layer2
        self.layer3 = backbone.layer3
        self.layer4 = backbone.layer4
        if weights is not None:
            load_backbone_weights(
                self,
                weights,
                encoder=name,
                imagenet=lambda: fetch_imagenet_state_dict(imagenet_weights, name),
            )
        self.conv1 = adapt_first_conv(self.conv1, in_channels, pretrained=weights is not None)
        if norm == "group":
            convert_to_group_norm(self)
        apply_output_stride([self.layer3, self.layer4], output_stride)
        self.out_channels = channels
        self.strides = level_strides(output_stride)
        self.output_stride = output_stride

    def forward(self, x: Tensor) -> list[Tensor]:
        """Features at the five levels; see :meth:`Encoder.forward`."""
        stem = self.relu(self.bn1(self.conv1(x)))
        c2 = self.layer1(self.maxpool(stem))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [stem, c2, c3, c4, c5]
