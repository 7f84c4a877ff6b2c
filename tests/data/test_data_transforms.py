"""Joint transforms (geometry shared, masks padded with ignore_index) and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelseg.data.normalize import BandStats, Normalizer, choose_normalizer, image_to_float
from pixelseg.data.transforms import build_transforms
from pixelseg.errors import ConfigError


def _pair(h: int = 20, w: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.randint(0, 4, (h, w))
    image = torch.stack([mask.float(), mask.float() * 2, torch.rand(h, w)])
    return image, mask


def test_train_geometry_is_shared_by_image_and_mask() -> None:
    torch.manual_seed(0)
    transform = build_transforms(
        train=True, crop_size=32, ignore_index=255, scale_range=(1.0, 1.0), vflip=True, rot90=True
    )
    for _ in range(10):
        image, mask = _pair()
        out_image, out_mask = transform(image, mask)
        assert out_image.shape == (3, 32, 32) and out_mask.shape == (32, 32)
        assert out_mask.dtype == torch.int64 and type(out_mask) is torch.Tensor
        real = out_mask != 255
        assert real.sum() == 20 * 28  # nothing lost, the rest is padding
        assert torch.equal(out_image[0][real], out_mask[real].float())
        assert (out_image[0][~real] == 0).all()  # images padded with 0, masks with 255


def test_padding_never_uses_class_zero() -> None:
    image, mask = _pair(10, 12)
    mask.fill_(1)
    out_image, out_mask = build_transforms(train=False, crop_size=32, ignore_index=11)(image, mask)
    assert out_mask.shape == (32, 32)
    assert set(out_mask.unique().tolist()) == {1, 11}
    assert torch.equal(out_image[:, :10, :12], image)


def test_random_scale_keeps_label_set_and_jitter_leaves_mask() -> None:
    torch.manual_seed(1)
    transform = build_transforms(train=True, crop_size=64, ignore_index=255, color_jitter=0.3)
    image, mask = _pair(40, 40)
    image = image / 6  # jitter works on [0, 1]
    for _ in range(5):
        _, out_mask = transform(image, mask)
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 3, 255}


def test_eval_pads_to_stride_only() -> None:
    image, mask = _pair(33, 64)
    out_image, out_mask = build_transforms(train=False, crop_size=16, ignore_index=255)(image, mask)
    assert out_image.shape == (3, 64, 64)
    assert torch.equal(out_mask[:33], mask) and (out_mask[33:] == 255).all()


def test_band_stats_stream_equals_numpy() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 65535, (7 + i, 5, 6), dtype=np.uint16) for i in range(4)]
    stats = BandStats()
    for image in images:
        stats.update(image_to_float(image))
    every = np.concatenate([im.reshape(-1, 6) for im in images]).astype(np.float64)
    norm = stats.normalizer()
    np.testing.assert_allclose(norm.mean, every.mean(0), rtol=1e-9)
    np.testing.assert_allclose(norm.std, every.std(0), rtol=1e-9)
    again = Normalizer.from_dict(norm.to_dict())
    assert again == norm and again.bands == 6


def test_choose_normalizer_modes() -> None:
    rgb = [(torch.rand(3, 4, 4), None)]
    assert choose_normalizer("auto", bands=3, dtype="uint8", train_images=rgb) == (
        Normalizer.imagenet()
    )
    gray = choose_normalizer(
        "auto", bands=1, dtype="uint8", train_images=[(torch.ones(1, 2, 2), None)]
    )
    assert gray.mean == (1.0,)
    assert choose_normalizer("none", bands=2, dtype="uint16", train_images=[]) == (
        Normalizer.identity(2)
    )
    with pytest.raises(ConfigError, match="needs 3 bands"):
        choose_normalizer("imagenet", bands=6, dtype="uint16", train_images=[])
    with pytest.raises(ConfigError, match="not one of"):
        choose_normalizer("zscore", bands=1, dtype="uint8", train_images=[])
    image = torch.full((2, 3, 3), 5.0)
    assert torch.allclose(Normalizer((5.0, 1.0), (1.0, 2.0))(image)[1], torch.full((3, 3), 2.0))
