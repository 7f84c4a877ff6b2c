"""Building blocks the semantic architectures share: conv-norm-act, class heads, upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixelseg.models.encoders.base import check_choice, group_count

UPSAMPLINGS = ("transposed", "bilinear")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """``BatchNorm2d`` for ``norm="batch"``, ``GroupNorm`` (up to 32 groups) for ``"group"``."""
    check_choice("norm", norm, ("batch", "group"))
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(group_count(channels), channels)


class ConvNormAct(nn.Sequential):
    """Same-padded convolution, normalisation and ReLU: ``(N, C_in, H, W) -> (N, C_out, H, W)``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Odd kernel size.
        dilation: Dilation; padding grows with it so the size is kept.
        norm: ``"batch"`` or ``"group"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        dilation: int = 1,
        norm: str = "batch",
    ) -> None:
        # No bias: the normalisation that follows would cancel it.
        conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=(kernel_size // 2) * dilation,
            dilation=dilation,
            bias=False,
        )
        super().__init__(conv, norm_layer(norm, out_channels), nn.ReLU(inplace=True))


class SegmentationHead(nn.Sequential):
    """Optional dropout then a 1x1 convolution to class logits: ``(N, C, H, W) -> (N, K, H, W)``.

    Args:
        in_channels: Input channels.
        num_classes: Classes ``K``.
        dropout: Dropout probability before the classifier (0 disables it).
    """

    def __init__(self, in_channels: int, num_classes: int, *, dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.Dropout2d(dropout)] if dropout > 0 else []
        layers.append(nn.Conv2d(in_channels, num_classes, kernel_size=1))
        super().__init__(*layers)


def bilinear_kernel(size: int) -> Tensor:
    """The ``(size, size)`` kernel with which a transposed convolution upsamples bilinearly."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(size, dtype=torch.float64) - center).abs() / factor
    return torch.outer(ramp, ramp).float()


def bilinear_transposed_conv(channels: int, factor: int) -> nn.ConvTranspose2d:
    """A trainable per-channel ``ConvTranspose2d`` upsampling by ``factor``, initialised bilinear.

    Kernel ``2 * factor``, stride ``factor``, padding ``factor // 2``: maps ``(N, C, h, w)`` to
    ``(N, C, factor * h, factor * w)`` and, away from the border, equals
    ``F.interpolate(scale_factor=factor, mode="bilinear", align_corners=False)`` (as in Long et
    al., where these layers start bilinear and are then learned). One filter per channel
    (``groups=channels``) keeps classes apart at the start and the parameter count small.
    """
    if factor < 2 or factor % 2:
        raise ValueError(f"bilinear transposed convolution needs an even factor, got {factor}")
    conv = nn.ConvTranspose2d(
        channels,
        channels,
        kernel_size=2 * factor,
        stride=factor,
        padding=factor // 2,
        groups=channels,
        bias=False,
    )
    with torch.no_grad():
        conv.weight.copy_(bilinear_kernel(2 * factor).expand_as(conv.weight))
    return conv


def fit_to_size(x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Crop ``x`` of shape ``(N, C, h, w)`` to ``size`` if it is at least as large, else resize.

    Upsampled maps are usually ``ceil(H / s) * s >= H``; cropping from the top-left keeps
    them aligned with the input. Anything smaller is interpolated (bilinear).
    """
    # No int(): under torch.export / ONNX export the sizes are symbolic, and int() would bake
    # the example's size into the graph.
    height, width = size[0], size[1]
    if x.shape[-2] >= height and x.shape[-1] >= width:
        return x[..., :height, :width]
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def match_size(x: Tensor, size: torch.Size) -> Tensor:
    """``x`` resized (bilinear) to ``size`` where it differs (a leaf for ``torch.fx``, so that
    the int8 quantisation can trace the model)."""
    if tuple(x.shape[-2:]) != tuple(size):
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return x


class Upsample(nn.Module):
    """Upsample ``(N, C, h, w)`` to a requested size by transposed convolution or interpolation.

    Args:
        channels: Channels (kept).
        factor: Nominal factor between the input and the target size (1 means only fit).
        mode: ``"transposed"`` (trainable, bilinear-initialised) or ``"bilinear"``.
    """

    def __init__(self, channels: int, factor: int, *, mode: str = "transposed") -> None:
        super().__init__()
        check_choice("upsampling", mode, UPSAMPLINGS)
        self.conv = (
            bilinear_transposed_conv(channels, factor)
            if mode == "transposed" and factor > 1
            else None
        )

    def forward(self, x: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
        """Return ``x`` resized to ``size`` (height, width)."""
        if self.conv is not None:
            return fit_to_size(self.conv(x), size)
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
