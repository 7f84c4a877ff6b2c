"""What ``pixelseg predict`` writes for each kind of prediction, resumable image by image.

Semantic predictions: ``<stem>_label.png`` (paletted class indices) and ``<stem>_overlay.png``.
Instance predictions (watershed and Mask R-CNN alike): ``<stem>_instances.png`` (16-bit instance
label image, objects ``1..N``), ``<stem>_overlay.png`` (contours on the image) and, for the whole
folder, ``predictions_coco.json`` (COCO results: RLE ``segmentation``, ``bbox``, ``area``,
``score``, the same objects as the label PNGs). Every file is written atomically, so a file that
exists is whole and a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pixelseg.engine.run_dir import RunInfo
from pixelseg.files import atomic_write_json
from pixelseg.structures import InstancePrediction, Prediction, SemanticPrediction

COCO_FILE = "predictions_coco.json"
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
        image: np.ndarray,
        prediction: Any,
        label_path: Path,
        overlay_path: Path,
    ) -> None:
        """Write one image's outputs."""

    def close(self) -> None:
        """Write what covers the whole folder (the COCO file)."""


class SemanticOutputs:
    """Paletted label PNGs and colour overlays."""

    label = "label"

    def __init__(self, out: Path, info: RunInfo) -> None:
        self.palette = info.palette

    def is_done(self, image_path: Path, label_path: Path, overlay_path: Path) -> bool:
        """Both PNGs exist."""
        return label_path.exists() and overlay_path.exists()

    def write(
        self,
        image_path: Path,
        image: np.ndarray,
        prediction: SemanticPrediction,
        label_path: Path,
        overlay_path: Path,
    ) -> None:
        """The overlay first, the label PNG last (its presence marks the image done)."""
        from pixelseg.report.figures import colorize, overlay, save_png

        label_map = prediction.label_map.numpy()
        save_png(overlay_path, overlay(image, colorize(label_map, self.palette)))
        save_png(label_path, label_map, palette=self.palette)

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
    """16-bit instance label PNGs, contour overlays and the folder's COCO results file.

    Args:
        out: the output folder.
        info: the run's record (the object classes name the COCO categories).
    """

    label = "instances"

    def __init__(self, out: Path, info: RunInfo) -> None:
        names = info.extra.get("object_classes") or info.class_names
        self.path = out / COCO_FILE
        self.previous = _previous_results(self.path)
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.categories = [{"id": k + 1, "name": name} for k, name in enumerate(names)]
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
        """Both PNGs exist and the earlier COCO file lists the image (its objects are kept)."""
        done = label_path.exists() and overlay_path.exists() and image_path.name in self.previous
        if done:
            self._add(*self.previous[image_path.name])
        return done

    def write(
        self,
        image_path: Path,
        image: np.ndarray,
        prediction: InstancePrediction,
        label_path: Path,
        overlay_path: Path,
    ) -> None:
        """Overlay, label PNG, and the image's objects appended to the COCO results."""
        from pixelseg.metrics.coco import coco_results
        from pixelseg.report.instance_figures import save_contour_overlay, save_label_png16

        save_contour_overlay(overlay_path, image, prediction.label_image)
        save_label_png16(label_path, prediction.label_image)
        entry = {"file_name": image_path.name, "height": image.shape[0], "width": image.shape[1]}
        annotations = coco_results(
            prediction.label_image, prediction.scores, prediction.labels, image_id=0
        )
        self._add(entry, annotations)
        self._save()

    def close(self) -> None:
        """Write the COCO file with every image."""
        self._save(force=True)


def output_writer(prediction_type: type[Prediction], out: Path, info: RunInfo) -> OutputWriter:
    """The writer of a task's predictions (by the type its ``predict`` returns)."""
    if prediction_type is InstancePrediction:
        return InstanceOutputs(out, info)
    return SemanticOutputs(out, info)
