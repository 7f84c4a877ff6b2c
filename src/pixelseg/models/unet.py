"""U-Net (Ronneberger, Fischer & Brox, 2015) and U-Net decoders on torchvision encoders.

The original is an encoder of double 3x3 convolutions halving the resolution ``depth`` times and
a decoder that upsamples, concatenates the encoder feature of the same resolution and applies
another double convolution. Convolutions here are same-padded (the paper's are valid), so the
output has the input's size; inputs not divisible by ``2**depth`` are padded internally and the
logits cropped back.
"""

from __future__ import annotations

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
from pixelseg.models.encoders.base import check_choice, pad_to_multiple
from pixelseg.models.heads import ConvNormAct, SegmentationHead, match_size
from pixelseg.models.registry import ModelFactory, register_model, register_model_family


class DoubleConv(nn.Sequential):
    """Two same-padded 3x3 conv-norm-ReLU: ``(N, C_in, H, W) -> (N, C_out, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str) -> None:
        super().__init__(
            ConvNormAct(in_channels, out_channels, norm=norm),
            ConvNormAct(out_channels, out_channels, norm=norm),
        )


class UpBlock(nn.Module):
    """Upsample to the skip's size, concatenate the skip, double convolution.

    ``"transposed"`` uses a learned 2x2 transposed convolution of stride 2 (the paper's
    up-convolution); ``"bilinear"`` interpolates and then applies a 3x3 convolution. Both also
    halve the channels when ``up_channels`` says so. A ``factor`` of 1 (two encoder levels at the
    same stride, as with a dilated encoder) only convolves.

    Args:
        in_channels: Channels of the coarse input.
        skip_channels: Channels of the skip feature (0: no skip).
        up_channels: Channels after upsampling.
        out_channels: Channels of the output.
        factor: Ratio between the skip's and the input's resolution (1, 2, 4, ...).
        upsampling: ``"transposed"`` or ``"bilinear"``.
        norm: ``"batch"`` or ``"group"``.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        up_channels: int,
        out_channels: int,
        *,
        factor: int = 2,
        upsampling: str = "transposed",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_choice("upsampling", upsampling, ("transposed", "bilinear"))
        self.upsampling = upsampling if factor > 1 else "none"
        self.up: nn.Module
        if self.upsampling == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, up_channels, factor, stride=factor)
        else:
            self.up = nn.Conv2d(in_channels, up_channels, kernel_size=3, padding=1)
        self.conv = DoubleConv(up_channels + skip_channels, out_channels, norm=norm)

    def forward(self, x: Tensor, skip: Tensor | None, size: torch.Size) -> Tensor:
        """Decode ``x`` ``(N, C_in, h, w)`` to ``(N, C_out, *size)`` using ``skip`` of that size."""
        if self.upsampling == "transposed":
            x = self.up(x)
            x = x[..., : size[0], : size[1]]
        x = match_size(x, size)
        if self.upsampling != "transposed":
            x = self.up(x)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv(x)


# Leaves for torch.fx (their size checks cannot be traced), so int8 quantisation can trace.
torch.fx.wrap("match_size")
torch.fx.wrap("pad_to_multiple")


class UNet(nn.Module):
    """The original U-Net with same-padded convolutions, for any input size.

    Args:
        in_channels: Input bands.
        num_classes: Classes.
        depth: Number of 2x downsamplings (the paper's 4).
        base_width: Channels of the first level; level ``i`` has ``base_width * 2**i``.
        upsampling: ``"transposed"`` (paper) or ``"bilinear"`` (interpolate + 3x3 conv).
        norm: ``"batch"`` or ``"group"`` after each convolution.
        dropout: Dropout before the 1x1 classifier.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        depth: int = 4,
        base_width: int = 64,
        upsampling: str = "transposed",
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 1 or base_width < 1:
            raise ConfigError(
                f"U-Net needs depth >= 1 and base_width >= 1, got {depth}, {base_width}"
            )
        widths = [base_width * 2**level for level in range(depth + 1)]
        self.output_stride = 2**depth
        self.required_divisor = 1
        self.stem = DoubleConv(in_channels, widths[0], norm=norm)
        self.down = nn.ModuleList(
            DoubleConv(widths[level], widths[level + 1], norm=norm) for level in range(depth)
        )
        self.up = nn.ModuleList(
            UpBlock(
                widths[level + 1],
                widths[level],
                widths[level],
                widths[level],
                upsampling=upsampling,
                norm=norm,
            )
            for level in reversed(range(depth))
        )
        self.head = SegmentationHead(widths[0], num_classes, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(N, num_classes, H, W)`` for images ``(N, C_in, H, W)``."""
        height, width = x.shape[-2:]
        # Replicate-pad to a multiple of 2**depth so every pooling halves exactly.
        x = pad_to_multiple(x, self.output_stride)
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        out = skips.pop()
        for block in self.up:
            skip = skips.pop()
            out = block(out, skip, skip.shape[-2:])
        return self.head(out)[..., :height, :width]


class EncoderUNet(nn.Module):
    """U-Net decoder on a five-level :class:`Encoder`, for any input size.

    Decoder widths are ``base_width * (16, 8, 4, 2, 1)`` from the deepest block to the last,
    which restores full resolution without a skip.

    Args:
        encoder: Feature extractor.
        num_classes: Classes.
        base_width: Width of the last decoder block.
        upsampling: ``"bilinear"`` (interpolate + 3x3 conv) or ``"transposed"``.
        norm: ``"batch"`` or ``"group"`` in the decoder.
        dropout: Dropout before the 1x1 classifier.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        num_classes: int,
        base_width: int = 16,
        upsampling: str = "bilinear",
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.output_stride = encoder.output_stride
        self.required_divisor = 1
        widths = [base_width * 2**level for level in (4, 3, 2, 1, 0)]
        channels = encoder.out_channels
        strides = (1, *encoder.strides)
        blocks = []
        in_channels = channels[-1]
        # Block k decodes to level 3 - k (level -1 = the input resolution, no skip).
        for k, width in enumerate(widths):
            level = 3 - k
            skip_channels = channels[level] if level >= 0 else 0
            factor = strides[level + 2] // strides[level + 1]
            blocks.append(
                UpBlock(
                    in_channels,
                    skip_channels,
                    width,
                    width,
                    factor=factor,
                    upsampling=upsampling,
                    norm=norm,
                )
            )
            in_channels = width
        self.decoder = nn.ModuleList(blocks)
        self.head = SegmentationHead(widths[-1], num_classes, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(N, num_classes, H, W)`` for images ``(N, C_in, H, W)``."""
        features = self.encoder(x)
        out = features[-1]
        for k, block in enumerate(self.decoder):
            level = 3 - k
            skip = features[level] if level >= 0 else None
            out = block(out, skip, skip.shape[-2:] if skip is not None else x.shape[-2:])
        return self.head(out)


@register_model("unet")
def unet(
    *,
    num_classes: int,
    in_channels: int = 3,
    weights: str | None = None,
    depth: int = 4,
    base_width: int = 64,
    upsampling: str = "transposed",
    norm: str = "batch",
    dropout: float = 0.0,
) -> UNet:
    """The original U-Net (no pretrained encoder; ``weights`` must be ``None``)."""
    if weights is not None:
        raise ConfigError("model 'unet' has no pretrained encoder: weights must be None")
    return UNet(
        in_channels=in_channels,
        num_classes=num_classes,
        depth=depth,
        base_width=base_width,
        upsampling=upsampling,
        norm=norm,
        dropout=dropout,
    )


def _factory(encoder_name: str) -> ModelFactory:
    def build(
        *,
        num_classes: int,
        in_channels: int = 3,
        weights: str | None = None,
        output_stride: int = 32,
        base_width: int = 16,
        upsampling: str = "bilinear",
        norm: str = "batch",
        dropout: float = 0.0,
    ) -> EncoderUNet:
        encoder = create_encoder(
            encoder_name,
            in_channels=in_channels,
            output_stride=output_stride,
            norm=norm,
            weights=weights,
        )
        return EncoderUNet(
            encoder,
            num_classes=num_classes,
            base_width=base_width,
            upsampling=upsampling,
            norm=norm,
            dropout=dropout,
        )

    build.__doc__ = f"U-Net decoder on {encoder_name}; see :class:`EncoderUNet` for the options."
    return build


for _encoder_name in ENCODERS:
    register_model(f"unet_{_encoder_name}")(_factory(_encoder_name))
# Any timm model: "unet_tu-<timm model>" builds on the encoder "tu-<timm model>".
register_model_family(f"unet_{TIMM_PREFIX}", placeholder=TIMM_PLACEHOLDER)(
    lambda timm_name: _factory(TIMM_PREFIX + timm_name)
)
