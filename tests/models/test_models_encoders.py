"""Encoders: feature resolution and channels at each output stride, for every encoder."""

from __future__ import annotations

import math

import pytest
import torch

from pixelseg.errors import PixelsegError
from pixelseg.models.encoders import ENCODERS, create_encoder

torch.set_num_threads(1)

EXPECTED_STRIDES = {32: (2, 4, 8, 16, 32), 16: (2, 4, 8, 16, 16), 8: (2, 4, 8, 8, 8)}


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_encoder_feature_resolution(name: str, output_stride: int) -> None:
    encoder = create_encoder(name, output_stride=output_stride).eval()
    assert encoder.output_stride == output_stride
    assert encoder.strides == EXPECTED_STRIDES[output_stride]
    height, width = 64, 40  # 40 is not a multiple of 16 or 32: sizes round up
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, height, width))
    assert len(features) == 5
    for feature, stride, channels in zip(features, encoder.strides, encoder.out_channels):
        assert feature.shape == (1, channels, math.ceil(height / stride), math.ceil(width / stride))


def spatial_dilations(module: torch.nn.Module) -> set[tuple[int, ...]]:
    """Dilations of the convolutions larger than 1x1 in ``module``."""
    return {
        tuple(m.dilation)
        for m in module.modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)
    }


def test_output_stride_8_dilates_instead_of_dropping_strides() -> None:
    # Un-striding alone would shrink the receptive field; the stages must be dilated 2 and 4.
    resnet = create_encoder("resnet18", output_stride=8)
    assert spatial_dilations(resnet.layer3) == {(2, 2)}
    assert spatial_dilations(resnet.layer4) == {(4, 4)}
    mobilenet = create_encoder("mobilenet_v3_large", output_stride=8)
    assert spatial_dilations(mobilenet.features[7:13]) == {(2, 2)}
    assert spatial_dilations(mobilenet.features[13:16]) == {(4, 4)}
    assert spatial_dilations(mobilenet.features[:7]) == {(1, 1)}
    # Same padding: a 5x5 depthwise kernel at dilation 4 pads 8.
    paddings = {
        m.padding
        for m in mobilenet.features[13:16].modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (5, 5)
    }
    assert paddings == {(8, 8)}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_group_norm_and_bands(name: str) -> None:
    encoder = create_encoder(name, in_channels=5, norm="group")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules())
    group_norms = [m for m in encoder.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert group_norms and all(m.num_channels % m.num_groups == 0 for m in group_norms)
    assert all(m.num_groups <= 32 for m in group_norms)
    features = encoder(torch.randn(2, 5, 32, 32))
    assert features[-1].shape[1] == encoder.out_channels[-1]


@pytest.mark.parametrize(
    "options",
    [{"output_stride": 4}, {"norm": "layer"}],
)
def test_bad_encoder_options(options: dict[str, object]) -> None:
    with pytest.raises(PixelsegError, match=next(iter(options))):
        create_encoder("resnet18", **options)  # type: ignore[arg-type]


def test_unknown_encoder() -> None:
    with pytest.raises(PixelsegError, match="resnet18"):
        create_encoder("vgg16")
