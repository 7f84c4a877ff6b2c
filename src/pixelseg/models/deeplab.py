"""DeepLabV3+ (Chen et al., 2018): ASPP on a dilated encoder plus a low-level skip decoder.

Atrous spatial pyramid pooling looks at the deepest feature with a 1x1 convolution, 3x3
convolutions at several dilation rates and an image-level pooling branch; the decoder upsamples
that to stride 4, concatenates reduced stride-4 encoder features and refines with two 3x3
convolutions before the class head.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixelseg.errors import ConfigError
from pixelseg.models.encoders import (
    ENCODERS,
    TIMM_PLACEHOLDER,
    TIMM_PREFIX,
    Encoder,
    create_encoder,
)
from pixelseg.models.heads import ConvNormAct, SegmentationHead
from pixelseg.models.registry import ModelFactory, register_model, register_model_family

# Rates from the paper for output stride 16 (doubled at 8); halved at 32 so they still fit.
DEFAULT_RATES = {8: (12, 24, 36), 16: (6, 12, 18), 32: (3, 6, 9)}


class ImagePooling(nn.Module):
    """Global average pool, 1x1 conv and ReLU, broadcast back: ``(N, C, h, w) -> (N, C', h, w)``.

    No normalisation: BatchNorm on a ``1x1`` map at batch size 1 has a single value per channel
    and fails in training, so the convolution keeps its bias instead.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Pooled context of shape ``(N, C', h, w)``."""
        pooled = F.relu(self.conv(F.adaptive_avg_pool2d(x, 1)))
        return pooled.expand(-1, -1, *x.shape[-2:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: ``(N, C_in, h, w) -> (N, width, h, w)``.

    Args:
        in_channels: Input channels.
        width: Channels of every branch and of the output.
        atrous_rates: Dilation rates of the 3x3 branches.
        norm: ``"batch"`` or ``"group"``.
        dropout: Dropout after the projection.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        *,
        atrous_rates: Sequence[int],
        norm: str = "batch",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvNormAct(in_channels, width, kernel_size=1, norm=norm)]
        branches += [
            ConvNormAct(in_channels, width, dilation=int(rate), norm=norm) for rate in atrous_rates
        ]
        branches.append(ImagePooling(in_channels, width))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(
            ConvNormAct(width * len(branches), width, kernel_size=1, norm=norm),
            nn.Dropout2d(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Multi-rate context features, shape ``(N, width, h, w)``."""
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+: ``(N, C_in, H, W) -> logits (N, num_classes, H, W)`` for any H, W.

    Args:
        encoder: Dilated encoder (output stride 16 or 8 as in the paper; 32 also works).
        num_classes: Classes.
        atrous_rates: ASPP rates; ``None`` picks the paper's for the encoder's output stride.
        decoder_width: Channels of ASPP and of the decoder convolutions.
        low_level_width: Channels the stride-4 skip is reduced to (the paper's 48).
        norm: ``"batch"`` or ``"group"``.
        dropout: Dropout after the ASPP projection.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        num_classes: int,
        atrous_rates: Sequence[int] | None = None,
        decoder_width: int = 256,
        low_level_width: int = 48,
        norm: str = "batch",
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        rates = tuple(atrous_rates) if atrous_rates is not None else None
        if rates is None:
            rates = DEFAULT_RATES[encoder.output_stride]
        if not rates or any(int(rate) < 1 for rate in rates):
            raise ConfigError(f"model option 'atrous_rates' must be positive integers, got {rates}")
        self.encoder = encoder
        self.output_stride = encoder.output_stride
        self.required_divisor = 1
        self.aspp = ASPP(
            encoder.out_channels[-1], decoder_width, atrous_rates=rates, norm=norm, dropout=dropout
        )
        self.low_level = ConvNormAct(
            encoder.out_channels[1], low_level_width, kernel_size=1, norm=norm
        )
        self.decoder = nn.Sequential(
            ConvNormAct(decoder_width + low_level_width, decoder_width, norm=norm),
            ConvNormAct(decoder_width, decoder_width, norm=norm),
        )
        self.head = SegmentationHead(decoder_width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(N, num_classes, H, W)`` for images ``(N, C_in, H, W)``."""
        features = self.encoder(x)
        low_level = self.low_level(features[1])
        context = F.interpolate(
            self.aspp(features[-1]),
            size=low_level.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        logits = self.head(self.decoder(torch.cat([context, low_level], dim=1)))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def _factory(encoder_name: str) -> ModelFactory:
    def build(
        *,
        num_classes: int,
        in_channels: int = 3,
        weights: str | None = None,
        output_stride: int = 16,
        atrous_rates: Sequence[int] | None = None,
        decoder_width: int = 256,
        norm: str = "batch",
        dropout: float = 0.1,
    ) -> DeepLabV3Plus:
        encoder = create_encoder(
            encoder_name,
            in_channels=in_channels,
            output_stride=output_stride,
            norm=norm,
            weights=weights,
            learned_stem=False,  # level 0 is never read: no unused stem parameters
        )
        return DeepLabV3Plus(
            encoder,
            num_classes=num_classes,
            atrous_rates=atrous_rates,
            decoder_width=decoder_width,
            norm=norm,
            dropout=dropout,
        )

    build.__doc__ = f"DeepLabV3+ on {encoder_name}; see :class:`DeepLabV3Plus` for the options."
    return build


for _encoder_name in ENCODERS:
    register_model(f"deeplabv3plus_{_encoder_name}")(_factory(_encoder_name))
# Any timm model: "deeplabv3plus_tu-<timm model>" builds on the encoder "tu-<timm model>".
register_model_family(f"deeplabv3plus_{TIMM_PREFIX}", placeholder=TIMM_PLACEHOLDER)(
    lambda timm_name: _factory(TIMM_PREFIX + timm_name)
)
