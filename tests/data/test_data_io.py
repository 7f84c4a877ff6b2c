"""Reading images and masks in every supported format, and refusing broken files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from pixelseg.data.io import image_size, read_header, read_image, read_mask, read_valid_mask
from pixelseg.errors import DataError

RNG = np.random.default_rng(0)


def _rgb(h: int = 6, w: int = 10) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_rgb_round_trip(tmp_path: Path, suffix: str) -> None:
    pixels = _rgb()
    path = tmp_path / f"a{suffix}"
    Image.fromarray(pixels).save(path)
    out = read_image(path)
    assert out.shape == (6, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, pixels)
    assert image_size(path) == (6, 10)


def test_grayscale_and_alpha_dropped(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    assert read_image(tmp_path / "g.png").shape == (5, 7, 1)
    rgba = np.dstack([_rgb(5, 7), np.full((5, 7), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, rgba[..., :3])
    Image.fromarray(gray).convert("LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png").shape == (5, 7, 1)


def test_gif_palette_image_and_mask(tmp_path: Path) -> None:
    indices = RNG.integers(0, 3, (8, 9), dtype=np.uint8)
    img = Image.fromarray(indices, "P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    img.save(tmp_path / "m.gif")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.gif"), indices)
    colours = read_mask(tmp_path / "m.gif", palette_colours=True)
    assert colours.shape == (8, 9, 3)
    np.testing.assert_array_equal(colours[indices == 1], [[255, 0, 0]] * int((indices == 1).sum()))
    assert read_image(tmp_path / "m.gif").shape == (8, 9, 3)


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = 255  # left half white
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # displayed rotated 90° clockwise
    img.save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    header = read_header(tmp_path / "r.jpg")
    assert (header.height, header.width, header.orientation) == (20, 40, 6)
    assert image_size(tmp_path / "r.jpg") == (40, 20)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (40, 20, 3)
    assert out[:18].mean() > 200 and out[22:].mean() < 50  # the white half is now on top


def test_tiff_bands_and_dtypes(tmp_path: Path) -> None:
    hwc = RNG.integers(0, 65535, (9, 11, 4), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "hwc.tif", hwc, photometric="minisblack", planarconfig="contig")
    np.testing.assert_array_equal(read_image(tmp_path / "hwc.tif"), hwc)
    chw = RNG.random((13, 9, 11), dtype=np.float32)
    tifffile.imwrite(tmp_path / "chw.tif", chw, photometric="minisblack", planarconfig="separate")
    out = read_image(tmp_path / "chw.tif")
    assert out.shape == (9, 11, 13) and out.dtype == np.float32
    np.testing.assert_array_equal(out, chw.transpose(1, 2, 0))
    header = read_header(tmp_path / "chw.tif")
    assert (header.height, header.width, header.bands, header.dtype) == (9, 11, 13, "float32")
    one = RNG.integers(0, 255, (9, 11), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "one.tif", one)
    assert read_image(tmp_path / "one.tif").shape == (9, 11, 1)
    tifffile.imwrite(
        tmp_path / "many.tif", np.zeros((14, 4, 4), np.uint16), photometric="minisblack"
    )
    with pytest.raises(DataError, match="14 bands; at most 13"):
        read_image(tmp_path / "many.tif")


def test_geotiff_nodata_tag(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "g.tif",
        np.ones((2, 4, 4), np.uint16),
        photometric="minisblack",
        extratags=[(42113, "s", 0, "-9999", True)],
    )
    assert read_header(tmp_path / "g.tif").nodata == -9999.0


def test_header_refuses_absurd_size_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 400), np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:60])  # header only: decoding would fail, the header does not
    header = read_header(path)
    assert (header.height, header.width) == (300, 400)
    with pytest.raises(DataError) as info:
        read_image(path, max_pixels=1000)
    assert "400x300 = 120000 pixels, above data.max_pixels = 1000" in str(info.value)


def test_corrupt_truncated_missing(tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"this is not a png at all")
    with pytest.raises(DataError, match=r"junk.png: not a readable image"):
        read_image(tmp_path / "junk.png")
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t.png: truncated or corrupt image data"):
        read_image(tmp_path / "t.png")
    tifffile.imwrite(tmp_path / "t.tif", np.ones((64, 64), np.uint16))
    data = (tmp_path / "t.tif").read_bytes()
    (tmp_path / "t.tif").write_bytes(data[:200])
    with pytest.raises(DataError, match=r"t.tif: "):
        read_image(tmp_path / "t.tif")
    with pytest.raises(DataError, match=r"nope.png: file not found"):
        read_image(tmp_path / "nope.png")


def test_mask_rgb_with_equal_channels_is_single_channel(tmp_path: Path) -> None:
    values = RNG.integers(0, 3, (5, 5), dtype=np.uint8)
    Image.fromarray(np.dstack([values] * 3)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), values)
    colour = _rgb(5, 5)
    Image.fromarray(colour).save(tmp_path / "c.png")
    assert read_mask(tmp_path / "c.png").shape == (5, 5, 3)
    fov = np.zeros((5, 5), np.uint8)
    fov[1:4, 1:4] = 255
    Image.fromarray(fov).save(tmp_path / "fov.gif")
    assert read_valid_mask(tmp_path / "fov.gif").sum() == 9
