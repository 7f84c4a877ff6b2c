"""MobileNetV3-Large encoder from torchvision, dilated by pixelseg for output stride 8 or 16."""

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

# Index ranges of torchvision's ``features`` for the five levels (strides 2 ... 32). The final
# 160 -> 960 1x1 convolution is left out: decoders do better with fewer, richer skip channels.
STAGE_BOUNDS = ((0, 2), (2, 4), (4, 7), (7, 13), (13, 16))
CHANNELS = (16, 24, 40, 112, 160)


class MobileNetV3Encoder(Encoder):
    """torchvision's MobileNetV3-Large feature blocks ``features[0:16]`` as a five-level encoder.

    Submodule names match torchvision's (``features.<i>``), so its state dict loads as is.

    Args:
        in_channels: Input bands.
        output_stride: 8, 16 or 32; the depthwise convolutions of the last stages are dilated.
        norm: ``"batch"`` or ``"group"``.
        weights: ``None``, ``"imagenet"`` or a local ``.safetensors``/``.pth`` file.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        output_stride: int = 32,
        norm: str = "batch",
        weights: str | Path | None = None,
    ) -> None:
        super().__init__()
        check_choice("norm", norm, ("batch", "group"))
        backbone = models.mobilenet_v3_large(weights=None)
        self.features = nn.Sequential(*list(backbone.features)[: STAGE_BOUNDS[-1][1]])
        if weights is not None:
            imagenet_weights = models.MobileNet_V3_Large_Weights.IMAGENET1K_V1
            load_backbone_weights(
                self,
                weights,
                encoder="mobilenet_v3_large",
                imagenet=lambda: fetch_imagenet_state_dict(imagenet_weights, "mobilenet_v3_large"),
            )
        stem: nn.Sequential = self.features[0]  # type: ignore[assignment]
        first_conv: nn.Conv2d = stem[0]  # type: ignore[assignment]
        stem[0] = adapt_first_conv(first_conv, in_channels, pretrained=weights is not None)
        if norm == "group":
            convert_to_group_norm(self)
        apply_output_stride([self._stage(3), self._stage(4)], output_stride)
        self.out_channels = CHANNELS
        self.strides = level_strides(output_stride)
        self.output_stride = output_stride

    def _stage(self, level: int) -> nn.Sequential:
        start, stop = STAGE_BOUNDS[level]
        return self.features[start:stop]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Features at the five levels; see :meth:`Encoder.forward`."""
        features = []
        for start, stop in STAGE_BOUNDS:
            for index in range(start, stop):
                x = self.features[index](x)
            features.append(x)
        return features
