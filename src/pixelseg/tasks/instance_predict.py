"""``pixelseg predict`` for an instance run: label PNGs, contour overlays, COCO results JSON.

For each input image ``<stem>``: ``<stem>_instances.png`` (16-bit instance label image, objects
``1..N`` by descending score, overlaps resolved by score) and ``<stem>_overlay.png`` (contours on
the image). ``predictions_coco.json`` holds every image's objects in COCO format (``images``,
``categories``, ``annotations`` with RLE ``segmentation``, ``bbox``, ``area`` and ``score``), the
same objects as the label PNGs. Every file is written atomically; an image whose two PNGs exist
and which the JSON lists is skipped, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from pixelseg.engine.writer import atomic_write_json
from pixelseg.tasks.instance_outputs import (
    DEFAULT_MASK_THRESHOLD,
    DEFAULT_SCORE_THRESHOLD,
    Detections,
    coco_results,
    detection_label_image,
)

COCO_FILE = "predictions_coco.json"
# Rewriting the whole JSON after every image would cost O(n^2) on large folders.
_SAVE_EVERY_S = 10.0


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


class _CocoFile:
    """The COCO results of a prediction run, saved atomically now and then."""

    def __init__(self, path: Path, class_names: list[str]) -> None:
        self.path = path
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.categories = [{"id": k + 1, "name": name} for k, name in enumerate(class_names)]
        self.saved = time.perf_counter()

    def add(self, image: dict[str, Any], annotations: list[dict[str, Any]]) -> None:
        """Append an image entry and its annotations, renumbering their ids."""
        image_id = len(self.images) + 1
        self.images.append({**image, "id": image_id})
        for annotation in annotations:
            self.annotations.append(
                {**annotation, "id": len(self.annotations) + 1, "image_id": image_id}
            )

    def save(self, *, force: bool = False) -> None:
        """Write the file if ``force`` or if the last write is older than ``_SAVE_EVERY_S``."""
        if force or time.perf_counter() - self.saved >= _SAVE_EVERY_S:
            content = {
                "images": self.images,
                "categories": self.categories,
                "annotations": self.annotations,
            }
            atomic_write_json(self.path, content)
            self.saved = time.perf_counter()


@torch.no_grad()
def predict_files(
    run_dir: str | Path, files: list[Path], out: Path, *, device: str = "auto"
) -> tuple[int, int]:
    """Predict instance label PNGs, overlays and COCO results for ``files`` into ``out``.

    Args:
        run_dir: a trained instance run (best checkpoint, tuned thresholds).
        files: input images.
        out: output folder (created).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...

    Returns:
        ``(written, skipped)`` image counts.
    """
    from pixelseg.data.normalize import Normalizer, image_to_float
    from pixelseg.engine.precision import resolve_device
    from pixelseg.engine.run_dir import load_model, read_run
    from pixelseg.inference.predict import predict_each, read_model_input
    from pixelseg.report.instance_figures import save_contour_overlay, save_label_png16

    _, info = read_run(run_dir)
    dev = resolve_device(device)
    model = load_model(run_dir).to(dev)
    normalizer = Normalizer.from_dict(info.normalizer)
    post = info.extra.get("postprocess") or {}
    score_threshold = float(post.get("score_threshold", DEFAULT_SCORE_THRESHOLD))
    mask_threshold = float(post.get("mask_threshold", DEFAULT_MASK_THRESHOLD))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = _previous_results(out / COCO_FILE)
    results = _CocoFile(out / COCO_FILE, list(info.class_names))

    def is_done(path: Path) -> bool:
        if path.name not in previous:
            return False
        results.add(*previous[path.name])
        return True

    def predict_one(path: Path, label_path: Path, overlay_path: Path) -> None:
        image = read_model_input(path, info.in_channels)
        tensor = normalizer(image_to_float(image)).to(dev)
        (output,) = model([tensor])
        detections = Detections.from_output(output)
        label_image, sources = detection_label_image(
            detections, score_threshold=score_threshold, mask_threshold=mask_threshold
        )
        save_contour_overlay(overlay_path, image, label_image)
        save_label_png16(label_path, label_image)
        entry = {"file_name": path.name, "height": image.shape[0], "width": image.shape[1]}
        annotations = coco_results(
            label_image,
            detections.scores[sources],
            detections.labels[sources],
            image_id=0,
        )
        results.add(entry, annotations)
        results.save()

    counts = predict_each(files, out, predict_one, label="instances", is_done=is_done)
    results.save(force=True)
    return counts
