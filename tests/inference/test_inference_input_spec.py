"""The training input a Predictor checks against: the warning rule, the record, nodata pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixelseg.data.input_spec import InputSpec, describe_images, nodata_pixels
from pixelseg.errors import DataError

RNG = np.random.default_rng(3)


def _image(level: float, size: int = 16) -> np.ndarray:
    noise = RNG.normal(0, 4, (size, size, 3))
    return np.clip(level + noise, 0, 255).astype(np.uint8)


def test_two_kinds_of_training_image_and_what_lies_beyond_them() -> None:
    # Nine dark fluorescence-like images and one bright slide: the bright kind is rare, not new.
    train = [_image(level) for level in (20, 24, 28, 22, 26, 30, 21, 25, 27)] + [_image(200)]
    spec = describe_images([(image, None) for image in train], dtype="uint8", bands=3)
    assert spec.images == 10 and spec.scaling == "divide by 255"
    assert all(spec.drift(image, None, "train") is None for image in train)
    assert spec.drift(_image(205), None, "bright") is None  # like the bright training image
    far = spec.drift(np.full((16, 16, 3), 255, np.uint8), None, "white.png")
    assert far is not None and far.startswith("white.png: band statistics far outside")
    # Near-identical training images: the floor keeps ordinary noise from warning.
    flat = describe_images([(_image(100), None) for _ in range(5)], dtype="uint8", bands=3)
    assert flat.drift(_image(101), None, "next") is None
    assert flat.drift(_image(160), None, "brighter") is not None


def test_nodata_pixels_leave_the_statistics_and_the_record_round_trips() -> None:
    image = _image(50)
    image[:, :4] = 0
    nodata = nodata_pixels(image, 0.0)
    assert nodata is not None and nodata[:, :4].all() and not nodata[:, 4:].any()
    spec = describe_images([(image, nodata)], dtype="uint8", bands=3, nodata=0.0)
    assert spec.band_mean[0] == pytest.approx(image[:, 4:, 0].mean() / 255)
    floats = np.ones((4, 4, 2), np.float32)
    floats[0, 0, 1] = np.nan  # NaN in any band of a float image is nodata, whatever the value
    assert nodata_pixels(floats, None).tolist()[0][:2] == [True, False]  # type: ignore[union-attr]
    assert nodata_pixels(image, None) is None
    nan_spec = InputSpec("float32", 2, "as is", float("nan"), "config")
    raw = nan_spec.to_dict()
    assert raw["nodata"] == "nan"
    back = InputSpec.from_dict(raw)
    assert back is not None and math.isnan(back.nodata or 0.0) and back.nodata_from == "config"
    assert InputSpec.from_dict({}) is None  # a run recorded before inputs were
    assert InputSpec.from_dict(spec.to_dict()) == spec


def test_mismatches_name_the_file_and_both_kinds() -> None:
    spec = InputSpec("uint16", 4, "as is")
    with pytest.raises(DataError, match=r"^a\.tif: image has 3 bands; .* 4-band uint16 images"):
        spec.refuse_mismatch(np.zeros((2, 2, 3), np.uint16), "a.tif")
    with pytest.raises(DataError, match=r"^b\.tif: image is float32 \(4 bands\); .* uint16"):
        spec.refuse_mismatch(np.zeros((2, 2, 4), np.float32), "b.tif")
    spec.refuse_mismatch(np.zeros((2, 2, 4), np.uint16), "c.tif")
