"""GeoTIFFs through rasterio: bands, dtype, nodata, CRS and transform read; predictions written in
place; an 8-bit 4-band TIFF keeps its four bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import tifffile
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from pixelseg.data.io import read_header, read_image, read_image_and_header, read_mask
from pixelseg.data.raster import GeoReference, write_geotiff
from pixelseg.errors import DataError

RNG = np.random.default_rng(5)
UTM33 = CRS.from_epsg(32633)
TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 4_650_000.0)  # 10 m pixels, north up


def write_with_rasterio(
    path: Path, bands: np.ndarray, *, nodata: float | None, compress: str | None = None
) -> Path:
    """``(C, H, W)`` bands as a GeoTIFF in UTM 33N, written by rasterio itself."""
    options = {"compress": compress} if compress else {}
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=bands.shape[1],
        width=bands.shape[2],
        count=bands.shape[0],
        dtype=str(bands.dtype),
        crs=UTM33,
        transform=TRANSFORM,
        nodata=nodata,
        **options,
    ) as dst:
        dst.write(bands)
    return path


@pytest.mark.parametrize(
    ("dtype", "nodata"),
    [("uint16", 0.0), ("uint8", 255.0), ("int16", -9999.0), ("float32", float("nan"))],
)
def test_geotiff_bands_dtype_nodata_crs_and_transform(
    tmp_path: Path, dtype: str, nodata: float
) -> None:
    bands = RNG.integers(1, 200, (4, 12, 9)).astype(dtype)
    bands[:, :, :2] = nodata
    path = write_with_rasterio(tmp_path / "scene.tif", bands, nodata=nodata, compress="lzw")
    header = read_header(path)
    assert (header.height, header.width, header.bands, header.dtype) == (12, 9, 4, dtype)
    assert header.nodata is not None and np.array_equal(header.nodata, nodata, equal_nan=True)
    assert header.georef is not None and header.reader == "rasterio"
    assert CRS.from_wkt(header.georef.crs) == UTM33
    assert header.georef.transform == tuple(TRANSFORM)[:6]
    image, same = read_image_and_header(path)
    assert (same.bands, same.dtype, same.georef) == (header.bands, header.dtype, header.georef)
    assert image.dtype == np.dtype(dtype) and image.shape == (12, 9, 4)
    np.testing.assert_array_equal(image, bands.transpose(1, 2, 0))


def test_plain_tiff_has_no_georeference_and_a_cut_geotiff_is_a_data_error(
    tmp_path: Path,
) -> None:
    pixels = RNG.integers(0, 65535, (6, 7, 5), dtype=np.uint16)
    tifffile.imwrite(
        tmp_path / "plain.tif", pixels, photometric="minisblack", planarconfig="contig"
    )
    header = read_header(tmp_path / "plain.tif")
    assert header.georef is None and header.bands == 5 and header.reader == "rasterio"
    np.testing.assert_array_equal(read_image(tmp_path / "plain.tif"), pixels)
    bands = RNG.integers(0, 9, (3, 64, 64)).astype(np.uint16)
    path = write_with_rasterio(tmp_path / "cut.tif", bands, nodata=0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match=r"cut\.tif: "):
        read_image(path)


@pytest.mark.parametrize("writer", ["pillow_rgba", "tifffile_contig", "rasterio"])
def test_8bit_4band_tiff_keeps_all_four_bands_png_drops_alpha(tmp_path: Path, writer: str) -> None:
    pixels = RNG.integers(0, 256, (8, 10, 4), dtype=np.uint8)  # red, green, blue, near infrared
    path = tmp_path / "rgbn.tif"
    if writer == "pillow_rgba":
        Image.fromarray(pixels, "RGBA").save(path)
    elif writer == "tifffile_contig":
        tifffile.imwrite(path, pixels, photometric="minisblack", planarconfig="contig")
    else:
        write_with_rasterio(path, np.ascontiguousarray(pixels.transpose(2, 0, 1)), nodata=None)
    assert read_header(path).bands == 4
    out = read_image(path)
    assert out.shape == (8, 10, 4)
    np.testing.assert_array_equal(out, pixels)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")  # a PNG's alpha is transparency
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), pixels[..., :3])


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_write_geotiff_keeps_crs_transform_nodata_and_colours(tmp_path: Path) -> None:
    georef = GeoReference(UTM33.to_wkt(), tuple(TRANSFORM)[:6])  # type: ignore[arg-type]
    labels = RNG.integers(0, 3, (10, 12)).astype(np.uint8)
    labels[:, :3] = 255
    path = write_geotiff(
        tmp_path / "out" / "labels.tif",
        labels,
        georef=georef,
        nodata=255,
        descriptions=["class"],
        palette=[[0, 0, 0], [0, 200, 0], [0, 0, 255]],
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["labels.tif"]  # no temporary left
    with rasterio.open(path) as src:
        assert src.crs == UTM33 and src.transform == TRANSFORM
        assert src.nodata == 255 and src.count == 1 and src.dtypes[0] == "uint8"
        assert src.descriptions == ("class",)
        assert src.colormap(1)[1] == (0, 200, 0, 255)
        np.testing.assert_array_equal(src.read(1), labels)
    np.testing.assert_array_equal(read_mask(path), labels)  # a GeoTIFF mask: class indices
    probs = RNG.random((2, 10, 12), dtype=np.float32)
    probs[:, 0, 0] = np.nan
    plain = write_geotiff(tmp_path / "probs.tif", probs, georef=None, nodata=float("nan"))
    with rasterio.open(plain) as src:
        assert src.crs is None and src.count == 2 and np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(), probs)
