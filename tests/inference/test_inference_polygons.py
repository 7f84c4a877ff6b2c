"""Instance polygons as GeoJSON: one feature per object, in the raster's CRS, areas that add up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pixelseg.data.raster import GeoReference
from pixelseg.inference.polygons import instance_features, write_instance_geojson

pytest.importorskip("rasterio")

# 10 m pixels, the top-left corner at (500000 E, 4000000 N) in UTM zone 33N.
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def utm33() -> GeoReference:
    from rasterio.crs import CRS

    return GeoReference(crs=CRS.from_epsg(32633).to_wkt(), transform=TRANSFORM)


def shoelace(ring: list[list[float]]) -> float:
    xs, ys = np.asarray(ring, dtype=np.float64).T
    return 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


def test_each_object_is_one_feature_with_its_area_and_place() -> None:
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:9] = 1  # 24 px
    labels[10:18, 20:25] = 2  # 40 px
    labels[0:2, 28:30] = 3  # two pieces of object 3
    labels[18:20, 0:2] = 3
    collection = instance_features(
        labels, np.array([0.9, 0.8, 0.5]), np.array([1, 2, 1]), utm33(), ["cell", "debris"]
    )
    assert collection["crs"]["properties"]["name"] == "EPSG:32633"
    features = collection["features"]
    assert [f["properties"]["id"] for f in features] == [1, 2, 3]
    assert [f["properties"]["class_name"] for f in features] == ["cell", "debris", "cell"]
    assert features[1]["properties"]["score"] == pytest.approx(0.8)
    first, second, third = (f["geometry"] for f in features)
    assert first["type"] == second["type"] == "Polygon" and third["type"] == "MultiPolygon"
    assert shoelace(first["coordinates"][0]) == pytest.approx(24 * 100)
    assert shoelace(second["coordinates"][0]) == pytest.approx(40 * 100)
    assert sum(shoelace(p[0]) for p in third["coordinates"]) == pytest.approx(8 * 100)
    xs, ys = np.asarray(first["coordinates"][0]).T
    assert (xs.min(), xs.max()) == (500030.0, 500090.0)  # columns 3..8 of 10 m
    assert (ys.min(), ys.max()) == (3999940.0, 3999980.0)  # rows 2..5, north up


def test_the_file_is_geojson_and_background_makes_no_feature(tmp_path: Path) -> None:
    labels = np.full((8, 8), -1, np.int32)  # nodata
    labels[2:4, 2:4] = 0
    path = write_instance_geojson(
        tmp_path / "x_instances.geojson", labels, np.zeros(0), np.zeros(0, np.int64), utm33()
    )
    loaded = json.loads(path.read_text())
    assert loaded["type"] == "FeatureCollection" and loaded["features"] == []
