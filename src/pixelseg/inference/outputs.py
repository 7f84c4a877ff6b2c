"""What ``pixelseg predict`` writes for each kind of prediction, resumable image by image.

Semantic predictions: ``<stem>_label.png`` (paletted class indices) and ``<stem>_overlay.png``
(the classes' colours over the image). Instance predictions (watershed and Mask R-CNN alike):
``<stem>_instances.png`` (16-bit instance label image, objects ``1..N``), ``<stem>_overlay.png``
(contours on the image) and, for the whole folder, ``predictions_coco.json`` (COCO results keyed
by file name: RLE ``segmentation``, ``bbox``, ``area``, ``score``; an image the Predictor warned
about carries its ``warnings``). A georeferenced input gets its labels as a GeoTIFF with its CRS
and transform instead (it opens in QGIS over the input): ``<stem>_label.tif`` (uint8, the class
colours as its colour table) or ``<stem>_instances.tif`` (int32) plus the objects' polygons in
``<stem>_instances.geojson`` (:mod:`pixelseg.inference.polygons`). Nodata pixels of the input are
left unlabelled (the ignore index, or ``-1`` in an instance GeoTIFF) and uncoloured.
``probabilities`` adds ``<stem>_probs.tif`` (:mod:`pixelseg.inference.probability_maps`).

Every file is written atomically, so a file that exists is whole and a killed run resumes where
it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pixelseg.data.raster import write_geotiff
from pixelseg.engine.run_dir import RunInfo
from pixelseg.files import atomic_write_json
from pixelseg.inference.polygons import write_instance_geojson
from pixelseg.inference.prepared import PreparedImage
from pixelseg.inference.probability_maps import ProbabilityMaps
from pixelseg.structures import InstancePrediction, Prediction, SemanticPrediction

COCO_FILE = "predictions_coco.json"
#: The nodata value of an instance label GeoTIFF.
INSTANCE_NODATA = -1
# Rewriting the whole JSON after every image would cost O(n^2) on large folders.
_SAVE_EVERY_S = 10.0


class OutputWriter(Protocol):
    """Writes one kind of prediction for a folder of inputs."""

    label: str

    def is_done(self, image_path: Path, label_path: Path, overlay_path: Path) -> bool:
        """True when this image's outputs exist whole (so it is skipped)."""

    def write(
        self,
        image_path: Path,
        prepared: PreparedImage,
        prediction: Any,
        label_path: Path,
        overlay_path: Path,
    ) -> None:
        """Write one image's outputs."""

    def close(self) -> None:
        """Write what covers the whole folder (the COCO file)."""


def geojson_path(label_path: Path) -> Path:
    """Where a georeferenced image's instance polygons go: ``<stem>_instances.geojson``."""
    return label_path.with_suffix(".geojson")


def unlabelled_value(ignore_index: int) -> int:
    """What a uint8 label image holds where nothing is predicted: the ignore index, or 255 when
    it does not fit in a byte."""
    return ignore_index if 0 <= ignore_index <= 255 else 255


class SemanticOutputs:
    """Paletted label PNGs (label GeoTIFFs for georeferenced inputs) and colour overlays.

    Args:
        out: the output folder.
        info: the run's record (palette, ignore index, class names).
        probabilities: also write each image's class probabilities.
        probability_dtype: float32, float16 or uint8 (see probability_maps).
    """

    label = "label"

    def __init__(
        self,
        out: Path,
        info: RunInfo,
        *,
        probabilities: bool = False,
        probability_dtype: str = "float32",
    ) -> None:
        self.out = out
        self.palette = info.palette
        self.ignore_index = int(info.ignore_index)
        self.unlabelled = unlabelled_value(self.ignore_index)
        self.probabilities = ProbabilityMaps(probabilities, probability_dtype, info.class_names)

    def is_done(self, image_path: Path, label_path: Path, overlay_path: Path) -> bool:
        """The label image and overlay (and the probabilities, when asked) exist."""
        done = label_path.exists() and overlay_path.exists()
        return done and self.probabilities.exist(image_path, label_path)

    def write(
        self,
        image_path: Path,
        prepared: PreparedImage,
        prediction: SemanticPrediction,
        label_path: Path,
        overlay_path: Path,
    ) -> None:
        """The overlay and probabilities first, the label image last (it marks the image done)."""
        from pixelseg.report.figures import colorize, overlay, save_png

        label_map = prediction.label_map.numpy()
        colours = colorize(label_map, self.palette, self.ignore_index)
        save_png(overlay_path, overlay(prepared.image, colours, uncoloured=prepared.nodata))
        self.probabilities.write(image_path, label_path, prediction.probs.numpy(), prepared)
        labels = np.where(label_map == self.ignore_index, self.unlabelled, label_map)
        labels = labels.astype(np.uint8)
        if label_path.suffix == ".tif":
            write_geotiff(
                label_path,
                labels,
                georef=prepared.georef,
                nodata=self.unlabelled,
                descriptions=["class"],
                palette=self.palette,
            )
        else:
            save_png(label_path, labels, palette=self.palette)

    def close(self) -> None:
        """Nothing covers the whole folder."""


def _previous_results(path: Path) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Image entry and annotations by file name from an earlier, complete COCO file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        images = {image["id"]: image for image in raw["images"]}
        by_name: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
            image["file_name"]: (image, []) for image in images.values()
        }
        for annotation in raw["annotations"]:
            by_name[images[annotation["image_id"]]["file_name"]][1].append(annotation)
    except (OSError, ValueError, KeyError, TypeError):
        return {}  # absent or foreign: every image is predicted again
    return by_name


class InstanceOutputs:
    """Instance label images (16-bit PNG, or int32 GeoTIFF for georeferenced inputs), contour
    overlays and the folder's COCO results file.

    Args:
        out: the output folder.
        info: the run's record (the object classes name the COCO categories).
        probabilities: also write the watershed net's class probabilities.
        probability_dtype: float32, float16 or uint8 (see probability_maps).
    """

    label = "instances"

    def __init__(
        self,
        out: Path,
        info: RunInfo,
        *,
        probabilities: bool = False,
        probability_dtype: str = "float32",
    ) -> None:
        names = info.extra.get("object_classes") or info.class_names
        self.out = out
        self.path = out / COCO_FILE
        self.previous = _previous_results(self.path)
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.categories = [{"id": k + 1, "name": name} for k, name in enumerate(names)]
        self.probabilities = ProbabilityMaps(probabilities, probability_dtype, info.class_names)
        self.saved = time.perf_counter()

    def _add(self, image: dict[str, Any], annotations: list[dict[str, Any]]) -> None:
        image_id = len(self.images) + 1
        self.images.append({**image, "id": image_id})
        for annotation in annotations:
            self.annotations.append(
                {**annotation, "id": len(self.annotations) + 1, "image_id": image_id}
            )

    def _save(self, *, force: bool = False) -> None:
        if force or time.perf_counter() - self.saved >= _SAVE_EVERY_S:
            content = {
                "images": self.images,
                "categories": self.categories,
                "annotations": self.annotations,
            }
            atomic_write_json(self.path, content)
            self.saved = time.perf_counter()

    def is_done(self, image_path: Path, label_path: Path, overlay_path: Path) -> bool:
        """Both images exist and the earlier COCO file lists the image (its objects are kept)."""
        done = label_path.exists() and overlay_path.exists() and image_path.name in self.previous
        # A .tif label means a georeferenced input: its polygons belong to its outputs.
        done = done and (label_path.suffix != ".tif" or geojson_path(label_path).exists())
        if done:
            self._add(*self.previous[image_path.name])
        return done

    def write(
        self,
        image_path: Path,
        prepared: PreparedImage,
        prediction: InstancePrediction,
        label_path: Path,
        overlay_path: Path,
    ) -> None:
        """Overlay, label image, and the image's objects appended to the COCO results."""
        from pixelseg.metrics.coco import coco_results
        from pixelseg.report.instance_figures import save_contour_overlay, save_label_png16

        image = prepared.image
        save_contour_overlay(overlay_path, image, prediction.label_image)
        if prediction.class_probs is not None:
            self.probabilities.write(image_path, label_path, prediction.class_probs, prepared)
        if label_path.suffix == ".tif":
            if prepared.georef is not None:
                write_instance_geojson(
                    geojson_path(label_path),
                    prediction.label_image,
                    prediction.scores,
                    prediction.labels,
                    prepared.georef,
                    [category["name"] for category in self.categories],
                )
            labels = prediction.label_image.astype(np.int32)
            if prepared.nodata is not None:
                labels[prepared.nodata] = INSTANCE_NODATA
            write_geotiff(
                label_path,
                labels,
                georef=prepared.georef,
                nodata=INSTANCE_NODATA,
                descriptions=["object"],
            )
        else:
            save_label_png16(label_path, prediction.label_image)
        entry: dict[str, Any] = {
            "file_name": image_path.name,
            "height": image.shape[0],
            "width": image.shape[1],
        }
        if prepared.warnings:
            entry["warnings"] = list(prepared.warnings)
        annotations = coco_results(
            prediction.label_image, prediction.scores, prediction.labels, image_id=0
        )
        self._add(entry, annotations)
        self._save()

    def close(self) -> None:
        """Write the COCO file with every image."""
        self._save(force=True)


def output_writer(
    prediction_type: type[Prediction],
    out: Path,
    info: RunInfo,
    *,
    probabilities: bool = False,
    probability_dtype: str = "float32",
) -> OutputWriter:
    """The writer of the predictions of a task whose ``predict`` returns ``prediction_type``,
    into ``out``; ``probabilities`` adds ``<stem>_probs.tif`` in ``probability_dtype``."""
    kind = InstanceOutputs if prediction_type is InstancePrediction else SemanticOutputs
    return kind(out, info, probabilities=probabilities, probability_dtype=probability_dtype)
