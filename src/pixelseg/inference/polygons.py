"""Instance polygons as GeoJSON, for georeferenced inputs (QGIS, GeoPandas, PostGIS read it).

Each object of an instance label image becomes one feature: its pixels' outline traced by GDAL
(``rasterio.features.shapes``, 4-connected, in the raster's CRS through its transform), a
``MultiPolygon`` when the object is in several pieces, with the object's ``id`` (its value in
the label image), ``class`` and ``score``. The file names the CRS in the pre-RFC 7946 ``crs``
member (GDAL and QGIS honour it): coordinates stay in the input's CRS, not reprojected to WGS84.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixelseg.data.raster import GeoReference
from pixelseg.files import atomic_write_json


def instance_features(
    label_image: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    georef: GeoReference,
    class_names: Sequence[str] = (),
) -> dict[str, Any]:
    """A GeoJSON ``FeatureCollection`` of the objects ``1..N`` of a ``(H, W)`` label image.

    Args:
        label_image: objects ``1..N`` (0 = background; negative values count as background).
        scores: ``(N,)`` confidence of object ``k`` at ``k - 1``.
        labels: ``(N,)`` 1-based class of each object.
        georef: the input's CRS and transform.
        class_names: names of the classes ``1..K`` (the ``class_name`` property), or none.
    """
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.features import shapes

    objects = np.where(label_image > 0, label_image, 0).astype(np.int32)
    pieces: dict[int, list[Any]] = {}
    for geometry, value in shapes(objects, mask=objects > 0, transform=Affine(*georef.transform)):
        pieces.setdefault(int(value), []).append(geometry["coordinates"])
    features = []
    for object_id in sorted(pieces):
        rings = pieces[object_id]
        geometry = (
            {"type": "Polygon", "coordinates": rings[0]}
            if len(rings) == 1
            else {"type": "MultiPolygon", "coordinates": rings}
        )
        label = int(labels[object_id - 1])
        properties: dict[str, Any] = {
            "id": object_id,
            "class": label,
            "score": round(float(scores[object_id - 1]), 6),
        }
        if 0 < label <= len(class_names):
            properties["class_name"] = class_names[label - 1]
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if georef.crs is not None:
        collection["crs"] = {
            "type": "name",
            "properties": {"name": CRS.from_wkt(georef.crs).to_string()},
        }
    return collection


def write_instance_geojson(
    path: Path,
    label_image: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    georef: GeoReference,
    class_names: Sequence[str] = (),
) -> Path:
    """Write :func:`instance_features` to ``path`` atomically; returns ``path``."""
    atomic_write_json(path, instance_features(label_image, scores, labels, georef, class_names))
    return path
