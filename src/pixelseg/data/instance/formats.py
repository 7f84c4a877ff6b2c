"""Reading instance annotations: the Kaggle layout, instance label images and COCO JSON.

Every format is read into one :class:`LoadedInstances`: the image as stored and a label image
where object ``k`` (1-based position) covers the pixels with value ``k``. Overlapping objects are
refused, so this label image loses nothing and per-object masks are built only when needed.

* ``format = "kaggle_instances"`` (DSB2018): ``images`` is a glob under ``root``, ``masks`` a glob
  template with ``{stem}`` / ``{id}`` matching one binary file per object
  (``"stage1_train/{stem}/masks/*.png"``); non-zero pixels belong to the object.
* ``format = "instance_labels"`` (Cellpose/StarDist): ``masks`` is a template naming one integer
  label image (16-bit PNG or TIFF), 0 = background, each other value one object.
* ``format = "coco"``: ``annotations`` is a COCO JSON file (see :mod:`.instance_coco`).

Object classes are 1-based indices into ``data.classes`` (0 is background, as torchvision's
detection models want). Without ``data.classes`` the Kaggle and label-image formats have one class
``"object"``. ``data.object_classes`` is an optional template of a JSON file mapping each object
(the mask file stem, or the id in the label image) to its class name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pixelseg.config import DataConfig
from pixelseg.data.folder import fill_template, id_from_stem
from pixelseg.data.instance.coco import CocoIndex
from pixelseg.data.instance.overlaps import PaintedObjects, paint_objects
from pixelseg.data.io import read_image, read_mask
from pixelseg.errors import ConfigError, DataError

INSTANCE_FORMATS = ("kaggle_instances", "instance_labels", "coco")
DEFAULT_CLASS = "object"


@dataclass(frozen=True)
class InstanceFiles:
    """The files of one instance sample (they may not exist: the check reports that).

    Attributes:
        id: the sample id (image stem, or ``id_pattern``'s group).
        image: the image file.
        objects: Kaggle: one mask file per object; label images: the label image; COCO: empty.
        classes: the ``object_classes`` JSON file, or ``None``.
        coco_image: index into the COCO index's images, or ``None``.
    """

    id: str
    image: Path
    objects: tuple[Path, ...] = ()
    classes: Path | None = None
    coco_image: int | None = None


@dataclass
class LoadedInstances:
    """One sample as read from disk, before transforms.

    Attributes:
        image: ``(H, W, C)`` in the stored dtype, alpha dropped.
        label_image: ``(H, W)`` int32, ``k`` where object ``k`` (1-based position) lies.
        ids: ``(N,)`` int64 object ids from the source (mask number, label value, annotation id).
        labels: ``(N,)`` int64 1-based class indices.
        ignore: ``(H, W)`` bool pixels to ignore (COCO ``iscrowd``), or ``None``.
        empty: names of objects with no pixel (dropped).
        resolved: small overlaps resolved in favour of the earlier object ("" for none).
    """

    image: np.ndarray
    label_image: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray | None = None
    empty: list[str] = field(default_factory=list)
    resolved: str = ""

    def masks(self) -> np.ndarray:
        """``(N, H, W)`` bool, one mask per object."""
        positions = np.arange(1, len(self.ids) + 1, dtype=np.int32)
        return np.asarray(self.label_image[None, :, :] == positions[:, None, None])


def _size_problem(what: str, got: tuple[int, ...], image: Path, want: tuple[int, ...]) -> str:
    return f"{what} is {got[1]}x{got[0]} but image {image.name} is {want[1]}x{want[0]} (WxH)"


class InstanceSource:
    """Lists and reads the samples of an instance ``[data]`` section.

    Args:
        data: the ``[data]`` section (``root`` resolved).

    Raises:
        ConfigError: not an instance format, or a bad template / ``id_pattern``.
        DataError: the root folder or the COCO file is missing or malformed.
    """

    def __init__(self, data: DataConfig) -> None:
        if data.format not in INSTANCE_FORMATS:
            raise ConfigError(
                f"data.format {data.format!r} is not an instance format "
                f"({', '.join(INSTANCE_FORMATS)})"
            )
        self.data = data
        self.root = Path(data.root)
        if not self.root.is_dir():
            raise DataError(
                self.root, "data root folder not found (set data.root or PIXELSEG_DATA)"
            )
        self.coco: CocoIndex | None = None
        if data.format == "coco":
            if not data.annotations:
                raise ConfigError(
                    'data.annotations: the COCO JSON file is needed for format "coco"'
                )
            self.coco = CocoIndex.read(self.root / data.annotations, self.root, data.classes)
            self.classes = self.coco.classes
        else:
            self.classes = tuple(data.classes) or (DEFAULT_CLASS,)
        self.samples = self._find()

    def _find(self) -> list[InstanceFiles]:
        data = self.data
        try:
            pattern = re.compile(data.id_pattern) if data.id_pattern else None
        except re.error as exc:
            raise ConfigError(f"data.id_pattern: {exc}") from exc
        if self.coco is not None:
            return [
                InstanceFiles(id_from_stem(image.file.stem, pattern), image.file, coco_image=index)
                for index, image in enumerate(self.coco.images)
            ]
        samples = []
        for image in sorted(self.root.glob(data.images)):
            if not image.is_file():
                continue
            sample_id = id_from_stem(image.stem, pattern)
            target = fill_template(data.masks, "masks", stem=image.stem, id=sample_id)
            if data.format == "kaggle_instances":
                objects = tuple(p for p in sorted(self.root.glob(target)) if p.is_file())
            else:
                objects = (self.root / target,)
            classes = None
            if data.object_classes:
                name = fill_template(
                    data.object_classes, "object_classes", stem=image.stem, id=sample_id
                )
                classes = self.root / name
            samples.append(InstanceFiles(sample_id, image, objects, classes))
        return samples

    def load(self, files: InstanceFiles) -> LoadedInstances:
        """Read and check one sample.

        Raises:
            DataError: an unreadable file, a size mismatch, overlapping objects, a float label
                image, an unknown class; the message names the file and the object.
        """
        image = read_image(files.image, max_pixels=self.data.max_pixels)
        shape = (int(image.shape[0]), int(image.shape[1]))
        if self.coco is not None and files.coco_image is not None:
            objects, ids, labels, ignore = self.coco.decode(files.coco_image, shape)
            painted = self._paint(objects, shape, files, self.coco.path)
            kept = painted.kept
            return LoadedInstances(
                image,
                painted.label_image,
                ids[kept],
                labels[kept],
                ignore,
                painted.empty,
                painted.resolved,
            )
        if self.data.format == "kaggle_instances":
            loaded = self._load_kaggle(files, image)
        else:
            loaded = self._load_label_image(files, image)
        keys = [p.stem for p in files.objects] if self.data.format == "kaggle_instances" else None
        loaded.labels = self._object_labels(files, loaded.ids, keys)
        return loaded

    def _load_kaggle(self, files: InstanceFiles, image: np.ndarray) -> LoadedInstances:
        shape = (int(image.shape[0]), int(image.shape[1]))
        masks = []
        for path in files.objects:
            mask = read_mask(path, max_pixels=self.data.max_pixels)
            if mask.shape[:2] != shape:
                raise DataError(path, _size_problem("mask", mask.shape, files.image, shape))
            binary = mask.any(axis=2) if mask.ndim == 3 else mask != 0
            masks.append((path.name, np.asarray(binary, dtype=bool)))
        folder = files.objects[0].parent if files.objects else files.image
        painted = self._paint(masks, shape, files, folder)
        ids = np.asarray(painted.kept, dtype=np.int64) + 1
        return LoadedInstances(
            image,
            painted.label_image,
            ids,
            np.ones(len(ids), np.int64),
            None,
            painted.empty,
            painted.resolved,
        )

    def _paint(
        self,
        masks: list[tuple[str, np.ndarray]],
        shape: tuple[int, int],
        files: InstanceFiles,
        path: Path,
    ) -> PaintedObjects:
        where = f"image {files.image.name}"
        return paint_objects(
            masks, shape, where=where, path=path, max_overlap=self.data.max_overlap
        )

    def _load_label_image(self, files: InstanceFiles, image: np.ndarray) -> LoadedInstances:
        path = files.objects[0]
        raw = read_mask(path, max_pixels=self.data.max_pixels)
        if raw.ndim == 3:
            raise DataError(
                path, "instance label image has colour channels; expected one id per pixel"
            )
        if np.issubdtype(raw.dtype, np.floating):
            raise DataError(
                path,
                f"instance label image is {raw.dtype}; object ids must be integers "
                "(16-bit PNG or integer TIFF)",
            )
        if raw.shape != image.shape[:2]:
            raise DataError(path, _size_problem("label image", raw.shape, files.image, image.shape))
        raw = raw.astype(np.int64, copy=False)
        if raw.size and raw.min() < 0:
            raise DataError(path, f"negative object id {int(raw.min())} in the label image")
        ids = np.unique(raw)
        ids = ids[ids != 0]
        label_image = np.searchsorted(ids, raw).astype(np.int32) + 1
        label_image[raw == 0] = 0
        return LoadedInstances(image, label_image, ids, np.ones(len(ids), np.int64))

    def _object_labels(
        self, files: InstanceFiles, ids: np.ndarray, keys: list[str] | None
    ) -> np.ndarray:
        """1-based classes per object: all 1, or from the ``object_classes`` JSON."""
        if files.classes is None:
            if len(self.classes) > 1 and len(ids):
                raise ConfigError(
                    f"data.classes lists {len(self.classes)} classes: set data.object_classes "
                    "to say which object is which"
                )
            return np.ones(len(ids), dtype=np.int64)
        path = files.classes
        try:
            table = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(path, f"malformed object class JSON ({exc})") from exc
        if not isinstance(table, dict):
            raise DataError(path, "object class file missing or not a JSON object")
        labels = np.ones(len(ids), dtype=np.int64)
        for index, object_id in enumerate(ids):
            key = keys[int(object_id) - 1] if keys is not None else str(int(object_id))
            name = table.get(key)
            if name not in self.classes:
                problem = "has no class" if name is None else f"has class {name!r}"
                raise DataError(
                    path, f"object {key} {problem}, not one of data.classes {list(self.classes)}"
                )
            labels[index] = self.classes.index(name) + 1
        return labels
