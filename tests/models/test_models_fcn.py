"""FCN: bilinear-initialised transposed convolutions and the skip layers of the variants."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pixelseg.models import create_model
from pixelseg.models.fcn import FCN
from pixelseg.models.heads import bilinear_kernel, bilinear_transposed_conv

torch.set_num_threads(1)


def test_bilinear_kernel_matches_known_values() -> None:
    # The 4x4 kernel of 2x upsampling (Long et al.'s get_upsampling_weight).
    ramp = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(bilinear_kernel(4), torch.outer(ramp, ramp))


@pytest.mark.parametrize("factor", [2, 4, 8, 32])
def test_transposed_conv_reproduces_bilinear_upsampling(factor: int) -> None:
    rows, cols = torch.meshgrid(torch.arange(5.0), torch.arange(7.0), indexing="ij")
    ramp = torch.stack([0.3 * rows + 0.7 * cols, torch.sin(0.4 * rows) + 0.1 * cols])[None]
    conv = bilinear_transposed_conv(2, factor)
    upsampled = conv(ramp)
    reference = F.interpolate(ramp, scale_factor=factor, mode="bilinear", align_corners=False)
    assert upsampled.shape == reference.shape == (1, 2, 5 * factor, 7 * factor)
    # Away from the border (where the transposed conv sees zero padding) they agree exactly.
    inner = (..., slice(factor, -factor), slice(factor, -factor))
    torch.testing.assert_close(upsampled[inner], reference[inner])
    assert conv.weight.requires_grad


def test_variants_have_their_skip_layers() -> None:
    options = {"num_classes": 4, "head_width": 16}
    fcn32 = create_model("fcn32s_resnet18", **options)
    fcn16 = create_model("fcn16s_resnet18", **options)
    fcn8 = create_model("fcn8s_resnet18", **options)
    assert isinstance(fcn8, FCN)
    assert len(fcn32.skip_scores) == 0
    assert [s.in_channels for s in fcn16.skip_scores] == [256]  # stride-16 feature
    assert [s.in_channels for s in fcn8.skip_scores] == [256, 128]  # stride 16, then 8
    assert all(s.out_channels == 4 for s in fcn8.skip_scores)
    # Zero-initialised skips: a fresh 8s computes exactly what its 32s trunk computes.
    trunk = {
        k: v for k, v in fcn32.state_dict().items() if k.startswith(("encoder.", "classifier."))
    }
    fcn8.load_state_dict(trunk, strict=False)
    fcn32.eval()
    fcn8.eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        coarse = fcn32.classifier(fcn32.encoder(images)[-1])
        features = fcn8.encoder(images)
        fine_trunk = fcn8.classifier(features[-1])
        skips = [score(features[level]) for level, score in zip((3, 2), fcn8.skip_scores)]
    torch.testing.assert_close(coarse, fine_trunk)
    assert all(skip.abs().max() == 0 for skip in skips)


def test_transposed_upsampling_is_default_and_bilinear_has_no_deconvolution() -> None:
    transposed = create_model("fcn8s_resnet18", num_classes=2, head_width=16)
    bilinear = create_model("fcn8s_resnet18", num_classes=2, head_width=16, upsampling="bilinear")

    def count(model: torch.nn.Module) -> int:
        return sum(isinstance(m, torch.nn.ConvTranspose2d) for m in model.modules())

    assert count(transposed) == 3  # x2, x2, x8
    assert count(bilinear) == 0
    images = torch.randn(1, 3, 37, 51)
    assert bilinear.eval()(images).shape == (1, 2, 37, 51)
