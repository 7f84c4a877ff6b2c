"""Fully convolutional networks (Long, Shelhamer & Darrell, 2015): FCN-32s, FCN-16s, FCN-8s.

The classifier's fully connected layers become convolutions (fc6 as 3x3, fc7 as 1x1, each with
dropout) on the deepest encoder feature, a 1x1 convolution scores every class, and the coarse
score map is upsampled to the input. The 16s and 8s variants first add 1x1 "skip" scores of the
stride-16 and stride-8 features, upsampling by 2 between them, which restores detail.
"""

from __future__ import annotations

from torch import Tensor, nn

from pixelseg.models.encoders import (
    ENCODERS,
    TIMM_PLACEHOLDER,
    TIMM_PREFIX,
    Encoder,
    create_encoder,
)
from pixelseg.models.encoders.base import check_choice
from pixelseg.models.heads import ConvNormAct, Upsample
from pixelseg.models.registry import ModelFactory, register_model, register_model_family

VARIANTS = {"32s": (), "16s": (3,), "8s": (3, 2)}


class FCN(nn.Module):
    """FCN on an encoder: ``(N, C_in, H, W) -> logits (N, num_classes, H, W)`` for any H, W.

    Args:
        encoder: Feature extractor following the :class:`Encoder` contract.
        num_classes: Classes.
        variant: ``"32s"``, ``"16s"`` or ``"8s"``: which skip scores are fused.
        upsampling: ``"transposed"`` (ConvTranspose2d initialised bilinear, trainable; the
            paper's choice) or ``"bilinear"`` (fixed interpolation).
        head_width: Channels of fc6 and fc7.
        dropout: Dropout after fc6 and after fc7.
        norm: ``"batch"`` or ``"group"`` in fc6/fc7.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        num_classes: int,
        variant: str = "8s",
        upsampling: str = "transposed",
        head_width: int = 512,
        dropout: float = 0.5,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_choice("variant", variant, tuple(VARIANTS))
        self.encoder = encoder
        self.output_stride = encoder.output_stride
        self.required_divisor = 1
        self.skip_levels = VARIANTS[variant]
        self.classifier = nn.Sequential(
            ConvNormAct(encoder.out_channels[-1], head_width, kernel_size=3, norm=norm),
            nn.Dropout2d(dropout),
            ConvNormAct(head_width, head_width, kernel_size=1, norm=norm),
            nn.Dropout2d(dropout),
            nn.Conv2d(head_width, num_classes, kernel_size=1),
        )
        self.skip_scores = nn.ModuleList()
        self.skip_upsamples = nn.ModuleList()
        stride = encoder.strides[-1]
        for level in self.skip_levels:
            score = nn.Conv2d(encoder.out_channels[level], num_classes, kernel_size=1)
            # Zero-initialised as in the paper, so a fresh 16s/8s starts as its coarser parent.
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)  # type: ignore[arg-type]
            self.skip_scores.append(score)
            factor = stride // encoder.strides[level]
            self.skip_upsamples.append(Upsample(num_classes, factor, mode=upsampling))
            stride = encoder.strides[level]
        self.final_upsample = Upsample(num_classes, stride, mode=upsampling)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits of shape ``(N, num_classes, H, W)`` for images ``(N, C_in, H, W)``."""
        features = self.encoder(x)
        scores = self.classifier(features[-1])
        for level, skip_score, upsample in zip(
            self.skip_levels, self.skip_scores, self.skip_upsamples
        ):
            skip = skip_score(features[level])
            scores = upsample(scores, skip.shape[-2:]) + skip
        return self.final_upsample(scores, x.shape[-2:])


def _factory(variant: str, encoder_name: str) -> ModelFactory:
    def build(
        *,
        num_classes: int,
        in_channels: int = 3,
        weights: str | None = None,
        output_stride: int = 32,
        norm: str = "batch",
        upsampling: str = "transposed",
        head_width: int = 512,
        dropout: float = 0.5,
    ) -> FCN:
        encoder = create_encoder(
            encoder_name,
            in_channels=in_channels,
            output_stride=output_stride,
            norm=norm,
            weights=weights,
            learned_stem=False,  # level 0 is never read: no unused stem parameters
        )
        return FCN(
            encoder,
            num_classes=num_classes,
            variant=variant,
            upsampling=upsampling,
            head_width=head_width,
            dropout=dropout,
            norm=norm,
        )

    build.__doc__ = f"FCN-{variant} on {encoder_name}; see :class:`FCN` for the options."
    return build


def _register_timm_family(variant: str) -> None:
    """Register ``fcn<variant>_tu-<timm model>``: FCN on the encoder ``tu-<timm model>``."""
    register_model_family(f"fcn{variant}_{TIMM_PREFIX}", placeholder=TIMM_PLACEHOLDER)(
        lambda timm_name: _factory(variant, TIMM_PREFIX + timm_name)
    )


for _variant in VARIANTS:
    for _encoder_name in ENCODERS:
        register_model(f"fcn{_variant}_{_encoder_name}")(_factory(_variant, _encoder_name))
    _register_timm_family(_variant)
