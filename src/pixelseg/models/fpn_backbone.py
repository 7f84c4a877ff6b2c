"""Detection plumbing around a pixelseg encoder: the FPN backbone, RoI poolers and the transform.

These are the pieces :mod:`pixelseg.models.mask_rcnn` hands to torchvision's ``MaskRCNN``:

- :class:`EncoderFPN` turns an encoder's stride 4..32 maps into a GroupNorm feature pyramid
  with an extra max-pooled ``"pool"`` level (five levels, all ``out_channels`` wide);
- :class:`MultiScaleRoIPool` is torchvision's ``MultiScaleRoIAlign`` with quantised RoIPool in
  place of RoIAlign, keeping the same FPN level mapping, so the two can be compared fairly;
- :class:`NativeSizeTransform` keeps images at their own size (only padded to a multiple of 32).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import Tensor, nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign, roi_pool
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.poolers import (
    LevelMapper,
    _convert_to_roi_format,
    _filter_input,
    _setup_scales,
)

from pixelseg.errors import ConfigError

# The encoder levels the pyramid is built on: strides 4, 8, 16, 32 (level 1 is stride 2).
FPN_STRIDES = (4, 8, 16, 32)
# Names of the pyramid maps as torchvision's poolers and anchor generator expect them.
FPN_LEVEL_NAMES = ("0", "1", "2", "3")


def group_norm(num_channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups that divide ``num_channels`` (32 for the usual 256).

    Args:
        num_channels: channels of the normalised map.

    Returns:
        The normalisation layer; usable as torchvision's ``norm_layer`` callable.
    """
    return nn.GroupNorm(math.gcd(32, num_channels), num_channels)


class EncoderFPN(nn.Module):
    """A pixelseg encoder followed by a GroupNorm feature pyramid network.

    Args:
        encoder: module with ``out_channels`` and ``strides`` for its five levels (strides
            ``(2, 4, 8, 16, 32)``) whose ``forward`` returns the five maps.
        out_channels: channels of every pyramid level.

    Raises:
        ConfigError: the encoder's levels 2..5 do not have strides 4, 8, 16, 32 (a dilated
            encoder breaks the poolers' scale inference and the anchor levels).
    """

    def __init__(self, encoder: nn.Module, *, out_channels: int = 256) -> None:
        super().__init__()
        strides = tuple(getattr(encoder, "strides", ()))
        channels = tuple(getattr(encoder, "out_channels", ()))
        if len(strides) != 5 or len(channels) != 5 or strides[1:] != FPN_STRIDES:
            raise ConfigError(
                f"Mask R-CNN needs an encoder with five levels of strides (2, 4, 8, 16, 32), "
                f"got strides {strides} (use output_stride=32)"
            )
        self.encoder = encoder
        self.fpn = FeaturePyramidNetwork(
            list(channels[1:]),
            out_channels,
            extra_blocks=LastLevelMaxPool(),
            norm_layer=group_norm,
        )
        # torchvision's MaskRCNN reads the pyramid width from this attribute.
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Compute the pyramid.

        Args:
            x: ``(N, C, H, W)`` images, ``H`` and ``W`` multiples of 32.

        Returns:
            Maps ``"0"``..``"3"`` of shape ``(N, out_channels, H / s, W / s)`` for strides
            ``s`` = 4..32, then ``"pool"`` at stride 64.
        """
        features = self.encoder(x)
        levels = OrderedDict(zip(FPN_LEVEL_NAMES, features[1:], strict=True))
        pyramid: OrderedDict[str, Tensor] = self.fpn(levels)
        return pyramid


class MultiScaleRoIPool(MultiScaleRoIAlign):
    """Multi-scale quantised RoIPool with the same FPN level mapping as ``MultiScaleRoIAlign``.

    Box corners are rounded to the feature grid and bins max-pooled, as in Fast R-CNN; only the
    per-level operator differs from torchvision's RoIAlign pooler (``sampling_ratio`` is unused).
    Subclassing keeps ``MaskRCNN``'s type checks on ``box_roi_pool``/``mask_roi_pool`` happy.
    """

    scales: list[float] | None
    map_levels: LevelMapper | None

    def forward(
        self,
        x: dict[str, Tensor],
        boxes: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> Tensor:
        """Pool every box from the pyramid level its size maps to.

        Args:
            x: the pyramid maps, ``(N, C, H_l, W_l)`` each.
            boxes: per image ``(K_i, 4)`` XYXY boxes in image pixels.
            image_shapes: ``(H, W)`` of each image before the backbone.

        Returns:
            ``(sum K_i, C, output_size[0], output_size[1])`` pooled features.
        """
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level
            )
        rois = _convert_to_roi_format(boxes)
        levels = self.map_levels(boxes)
        first = features[0]
        result = first.new_zeros((rois.shape[0], first.shape[1], *self.output_size))
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            index = torch.where(levels == level)[0]
            pooled = roi_pool(feature, rois[index], list(self.output_size), scale)
            result[index] = pooled.to(result.dtype)
        return result


def build_roi_pooler(kind: str, output_size: int, *, sampling_ratio: int = 2) -> MultiScaleRoIAlign:
    """A multi-scale pooler over the four FPN levels.

    Args:
        kind: ``"align"`` (bilinear RoIAlign, no rounding) or ``"pool"`` (quantised RoIPool).
        output_size: side of the pooled square (7 for boxes, 14 for masks).
        sampling_ratio: RoIAlign samples per bin side (ignored by ``"pool"``).

    Returns:
        The pooler module.

    Raises:
        ConfigError: ``kind`` is neither ``"align"`` nor ``"pool"``.
    """
    names = list(FPN_LEVEL_NAMES)
    if kind == "align":
        return MultiScaleRoIAlign(names, output_size, sampling_ratio)
    if kind == "pool":
        return MultiScaleRoIPool(names, output_size, sampling_ratio)
    raise ConfigError(f"roi_pooler must be 'align' or 'pool', got {kind!r}")


class NativeSizeTransform(GeneralizedRCNNTransform):
    """``GeneralizedRCNNTransform`` without resizing and without normalisation.

    pixelseg's data pipeline already normalises images, and nuclei-sized objects must not be
    blown up by torchvision's 800-pixel default: images are only zero-padded (bottom/right) to a
    multiple of ``size_divisible`` when batched, and predictions come back at the input size.
    """

    def __init__(self, *, in_channels: int = 3, size_divisible: int = 32) -> None:
        super().__init__(
            min_size=0,
            max_size=0,
            image_mean=[0.0] * in_channels,
            image_std=[1.0] * in_channels,
            size_divisible=size_divisible,
        )

    def normalize(self, image: Tensor) -> Tensor:
        """Return ``image`` unchanged (it arrives normalised); only check it is floating point."""
        if not image.is_floating_point():
            raise TypeError(f"images must be floating point, got {image.dtype}")
        return image

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        """Return ``image`` and ``target`` unchanged: no rescaling at native resolution."""
        return image, target
