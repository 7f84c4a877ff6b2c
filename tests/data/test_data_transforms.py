"""Joint transforms (crop first, geometry shared, masks padded with ignore_index), foreground
crops and normalisation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from pixelseg.data.foreground import (
    class_rows,
    instance_crop_sampling,
    pick_class_pixel,
    semantic_crop_sampling,
)
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


def _scene(size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 RGB image and its class map: classes 0/1 in halves, one 3x3 class 2 object."""
    label = np.zeros((size, size), dtype=np.uint8)
    label[:, size // 2 :] = 1
    label[200:203, 40:43] = 2
    image = np.stack([label * 100, label * 50, np.full_like(label, 7)], axis=2).astype(np.uint8)
    return image, label


def test_crop_first_from_arrays_equals_the_tensor_path_and_repeats_with_the_seed() -> None:
    image, label = _scene(96)
    transform = build_transforms(
        train=True, crop_size=64, ignore_index=255, vflip=True, rot90=True, color_jitter=0.2
    )
    outputs = []
    for call in ("arrays", "tensors", "arrays"):
        torch.manual_seed(11)
        if call == "arrays":
            outputs.append(transform.from_arrays(image, label))  # type: ignore[union-attr]
        else:
            outputs.append(transform(image_to_float(image), torch.from_numpy(label).long()))
    for out_image, out_mask in outputs[1:]:
        assert torch.equal(out_image, outputs[0][0]) and torch.equal(out_mask, outputs[0][1])
    assert outputs[0][0].shape == (3, 64, 64) and outputs[0][1].dtype == torch.int64


def test_crop_first_pads_small_images_with_ignore_and_zero() -> None:
    image, label = _scene(40)
    transform = build_transforms(train=True, crop_size=64, ignore_index=9, scale_range=(1, 1))
    torch.manual_seed(0)
    for _ in range(5):
        out_image, out_mask = transform.from_arrays(image, label)  # type: ignore[union-attr]
        real = out_mask != 9
        assert out_mask.shape == (64, 64) and real.sum() == 40 * 40  # nothing lost
        assert (out_image[:, ~real] == 0).all()
        assert torch.equal(out_image[0][real] * 255 / 100, out_mask[real].float())


def test_random_scale_crops_a_window_of_crop_over_scale() -> None:
    image, label = _scene(256)
    transform = build_transforms(train=True, crop_size=32, ignore_index=255, hflip=False)
    torch.manual_seed(3)
    sizes = set()
    for _ in range(20):
        out_image, out_mask = transform.from_arrays(image, label)  # type: ignore[union-attr]
        assert out_image.shape == (3, 32, 32) and (out_mask != 255).all()  # no padding needed
        sizes.add(int((out_mask == 1).sum()))
    assert len(sizes) > 5  # the scale changes how much of each half a crop sees


def test_nodata_pixels_become_the_fill_before_scaling() -> None:
    image = np.full((32, 32, 2), 500, dtype=np.uint16)
    image[:, :16] = 0
    label = np.zeros((32, 32), dtype=np.int64)
    nodata = (image == 0).all(axis=2)
    transform = build_transforms(train=True, crop_size=32, ignore_index=255, scale_range=(1, 1))
    out_image, _ = transform.from_arrays(  # type: ignore[union-attr]
        image, label, nodata=nodata, fill=(100.0, 200.0)
    )
    assert set(out_image[0].unique().tolist()) == {100.0, 500.0}
    assert set(out_image[1].unique().tolist()) == {200.0, 500.0}


def test_foreground_crops_show_the_rare_class_far_more_often() -> None:
    image, label = _scene(256)
    rows = class_rows(label, 3)
    shown = {}
    for share in (0.0, 1.0 / 3.0):
        transform = build_transforms(
            train=True,
            crop_size=32,
            ignore_index=255,
            scale_range=(1, 1),
            foreground_share=share,
            foreground_classes=[2],
        )
        torch.manual_seed(0)
        shown[share] = sum(
            bool((transform.from_arrays(image, label, rows=rows)[1] == 2).any())  # type: ignore[union-attr]
            for _ in range(300)
        )
    assert shown[0.0] < 20  # uniform: (32 + 3)^2 / 256^2 = 1.9 % of the crops
    assert shown[1.0 / 3.0] > 80  # a third centred on it, plus the uniform ones


def test_foreground_pixel_is_uniform_over_a_class_and_classes_uniform() -> None:
    label = np.zeros((6, 8), dtype=np.uint8)
    label[1, [2, 6]] = 1
    label[4, [0, 7]] = 1
    label[5, 5] = 2
    rows = class_rows(label, 3)
    assert rows[:, 1].tolist() == [0, 2, 0, 0, 2, 0] and rows.sum() == 6 * 8  # no void
    torch.manual_seed(0)
    picks = Counter(pick_class_pixel(label, rows, [1, 2]) for _ in range(800))
    assert set(picks) == {(1, 2), (1, 6), (4, 0), (4, 7), (5, 5)}
    assert 320 <= picks[(5, 5)] <= 480  # class 2 drawn half the time
    assert all(70 <= picks[p] <= 130 for p in [(1, 2), (1, 6), (4, 0), (4, 7)])
    assert pick_class_pixel(label, rows, [0]) is not None
    assert (
        pick_class_pixel(np.zeros((3, 3), np.uint8), class_rows(label[:3, :3] * 0, 3), [1]) is None
    )


def test_auto_crop_sampling_rule() -> None:
    names = ["ground", "road", "car"]
    rare = semantic_crop_sampling(None, np.array([900, 80, 20]), names)
    assert rare["foreground_share"] == pytest.approx(1 / 3) and rare["classes"] == ["car"]
    assert "car 2.00 %" in rare["reason"]
    common = semantic_crop_sampling(None, np.array([600, 300, 100]), names)
    assert common["foreground_share"] == 0 and "car, 10.0 %" in common["reason"]
    explicit = semantic_crop_sampling(0.5, np.array([600, 300, 100]), names)
    assert explicit["foreground_share"] == 0.5 and explicit["class_indices"] == [1, 2]
    objects = instance_crop_sampling(None, 30, 1000, ["nucleus"])
    assert objects["foreground_share"] == pytest.approx(1 / 3)
    assert instance_crop_sampling(None, 300, 1000, ["nucleus"])["foreground_share"] == 0
