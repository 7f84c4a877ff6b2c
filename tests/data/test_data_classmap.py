"""Class maps: indices, value lists, palettes, void, and the exact errors for unknown labels."""

from __future__ import annotations

import numpy as np
import pytest

from pixelseg.config import DataConfig
from pixelseg.data.classmap import ClassMap, default_palette
from pixelseg.errors import ConfigError, DataError


def _map(**kwargs: object) -> ClassMap:
    return ClassMap.from_config(DataConfig(**kwargs))  # type: ignore[arg-type]


def test_index_mode_keeps_classes_and_ignore() -> None:
    cm = _map(classes=("a", "b", "c"))
    raw = np.array([[0, 1], [2, 255]], np.uint8)
    out = cm.encode(raw, "m.png")
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [[0, 1], [2, 255]])
    np.testing.assert_array_equal(cm.count(out), [1, 1, 1])


def test_unknown_values_listed_with_pixel_counts() -> None:
    cm = _map(classes=("a", "b"))
    raw = np.zeros((4, 4), np.uint8)
    raw[0, :3] = 7
    raw[1, 0] = 3
    with pytest.raises(DataError) as info:
        cm.encode(raw, "masks/x.png")
    assert str(info.value) == (
        "masks/x.png: unknown mask values 7 (3 px), 3 (1 px); expected 0..1 or void 255"
    )


def test_mask_values_isbi_style() -> None:
    cm = _map(classes=("membrane", "cell"), mask_values=(0, 255), ignore_index=255)
    out = cm.encode(np.array([[0, 255], [255, 0]], np.uint8), "m.png")
    np.testing.assert_array_equal(out, [[0, 1], [1, 0]])
    with pytest.raises(DataError, match=r"unknown mask values 128 \(1 px\); expected 0, 255"):
        cm.encode(np.array([[0, 128]], np.uint8), "m.png")


def test_void_values_become_ignore() -> None:
    cm = _map(classes=("a", "b"), mask_values=(10, 20), void_values=(99,), ignore_index=255)
    out = cm.encode(np.array([[10, 20, 99]], np.uint16), "m.tif")
    np.testing.assert_array_equal(out, [[0, 1, 255]])


def test_palette_mode_and_void_colour() -> None:
    cm = _map(
        classes=("sky", "road"),
        palette=((128, 128, 128), (128, 64, 128)),
        void_colour=(0, 0, 0),
        ignore_index=2,
    )
    raw = np.array([[[128, 128, 128], [128, 64, 128], [0, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(cm.encode(raw, "m.png"), [[0, 1, 2]])
    # a single-channel mask with a palette config is read as indices (CamVid's annot PNGs)
    np.testing.assert_array_equal(cm.encode(np.array([[1, 0, 2]], np.uint8), "m.png"), [[1, 0, 2]])


def test_unknown_palette_colour_listed() -> None:
    cm = _map(classes=("sky", "road"), palette=((128, 128, 128), (128, 64, 128)))
    raw = np.zeros((2, 3, 3), np.uint8)
    raw[...] = (128, 128, 128)
    raw[0, :2] = (10, 20, 30)
    with pytest.raises(DataError) as info:
        cm.encode(raw, "m.png")
    assert (
        str(info.value)
        == "m.png: unknown palette colours (10,20,30) (2 px); the palette has 2 classes"
    )


def test_rgb_mask_where_indices_expected() -> None:
    cm = _map(classes=("a", "b"))
    with pytest.raises(DataError) as info:
        cm.encode(np.zeros((2, 2, 3), np.uint8) + np.array([1, 2, 3], np.uint8), "rgb.png")
    assert str(info.value).startswith(
        "rgb.png: RGB colour mask where class indices are expected (expected 0..1 or void 255)"
    )


def test_config_mistakes() -> None:
    with pytest.raises(ConfigError, match="list the class names"):
        _map(classes=())
    with pytest.raises(ConfigError, match="ignore_index = 1 is a class index"):
        _map(classes=("a", "b", "c"), ignore_index=1)


def test_default_palette_distinct() -> None:
    colours = default_palette(21)
    assert len(set(colours)) == 21 and colours[0] == (0, 0, 0) and colours[1] == (128, 0, 0)
