"""COCO JSON instance annotations: an index checked on reading, masks decoded with pycocotools.

``file_name`` is resolved relative to the dataset ``root`` and refused when it points outside it.
Segmentations may be polygons (at least three points each), uncompressed RLE (``counts`` a list)
or compressed RLE (``counts`` a string); their size must match the image. ``iscrowd`` regions are
not objects: their union becomes the sample's ignore mask. Classes are ``data.classes`` (category
names must be among them) or, without it, the category names in the order of their ids.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pixelseg.errors import DataError


@dataclass(frozen=True)
class CocoImage:
    """One ``images`` entry with its annotations.

    Attributes:
        id: the COCO image id.
        file: the resolved image path (inside the root).
        height: height the JSON announces.
        width: width the JSON announces.
        annotations: its ``annotations`` entries, in file order.
    """

    id: int
    file: Path
    height: int
    width: int
    annotations: tuple[dict[str, Any], ...]


def rle_string_counts(counts: str) -> list[int]:
    """Decode the run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``).

    Raises:
        ValueError: the string ends in the middle of a number.
    """
    values: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("truncated RLE string")
            code = ord(counts[position]) - 48
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            position += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(values) > 2:
            value += values[-2]
        values.append(value)
    return values


def _integer(value: Any, path: Path, what: str) -> int:
    """``value`` as an int (a whole number, not a boolean), or a :class:`DataError`."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value != int(value):
        raise DataError(path, f"{what} must be a whole number, got {value!r}")
    return int(value)


def _require(condition: bool, path: Path, problem: str) -> None:
    if not condition:
        raise DataError(path, problem)


class CocoIndex:
    """A COCO file read and checked once; per-image masks decoded on demand.

    Attributes:
        path: the JSON file.
        classes: class names; label ``k`` is ``classes[k - 1]``.
        images: the images, in file order.
    """

    def __init__(
        self,
        path: Path,
        classes: tuple[str, ...],
        images: list[CocoImage],
        category_labels: dict[int, int],
    ) -> None:
        self.path = path
        self.classes = classes
        self.images = images
        self.category_labels = category_labels

    @classmethod
    def read(cls, path: Path, root: Path, classes: Sequence[str] = ()) -> CocoIndex:
        """Read and check a COCO file.

        Raises:
            DataError: missing, malformed or truncated JSON, a missing key, a ``file_name``
                outside ``root``, an unknown image or category, a polygon of fewer than three
                points; the message names the file and the annotation.
        """
        if not path.is_file():
            raise DataError(path, "COCO annotation file not found")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(
                path,
                f"malformed or truncated COCO JSON: {exc.msg} (line {exc.lineno}, "
                f"column {exc.colno})",
            ) from exc
        except UnicodeDecodeError as exc:
            raise DataError(path, f"COCO JSON is not UTF-8 text ({exc.reason})") from exc
        _require(isinstance(raw, dict), path, "COCO JSON must be an object at the top level")
        for key in ("images", "annotations", "categories"):
            _require(isinstance(raw.get(key), list), path, f"COCO JSON has no {key!r} list")
        categories: dict[int, str] = {}
        for entry in raw["categories"]:
            _require(
                isinstance(entry, dict) and "id" in entry and "name" in entry,
                path,
                f"category {entry!r} needs 'id' and 'name'",
            )
            categories[_integer(entry["id"], path, "a category id")] = str(entry["name"])
        names = tuple(classes) or tuple(categories[k] for k in sorted(categories))
        labels: dict[int, int] = {}
        for category_id, name in categories.items():
            _require(
                name in names,
                path,
                f"category {name!r} (id {category_id}) is not in data.classes {list(names)}",
            )
            labels[category_id] = names.index(name) + 1
        resolved_root = root.resolve()
        entries: dict[int, dict[str, Any]] = {}
        for entry in raw["images"]:
            _require(
                isinstance(entry, dict) and all(k in entry for k in ("id", "file_name")),
                path,
                f"image entry {str(entry)[:80]} needs 'id' and 'file_name'",
            )
            name = str(entry["file_name"])
            _require(
                "\0" not in name and name.strip() != "",
                path,
                f"image {entry['id']}: file_name {name!r} is not a file name",
            )
            file = (root / name).resolve()
            _require(
                file.is_relative_to(resolved_root),
                path,
                f"image {entry['id']}: file_name {entry['file_name']!r} points outside the "
                f"dataset root {root}",
            )
            entries[_integer(entry["id"], path, "an image id")] = {
                **entry,
                "file": file,
                "anns": [],
            }
        for ann in raw["annotations"]:
            _require(isinstance(ann, dict), path, f"annotation {str(ann)[:80]} is not an object")
            what = f"annotation {ann.get('id', '?')}"
            image = entries.get(_integer(ann.get("image_id", -1), path, f"{what}: image_id"))
            _require(
                image is not None, path, f"{what}: image_id {ann.get('image_id')} not in images"
            )
            assert image is not None
            what += f" (image {image['file_name']})"
            _require(
                _integer(ann.get("category_id", -1), path, f"{what}: category_id") in categories,
                path,
                f"{what}: category_id {ann.get('category_id')} is not in 'categories'",
            )
            segmentation = ann.get("segmentation")
            if isinstance(segmentation, list):
                _require(bool(segmentation), path, f"{what}: empty polygon list")
                for polygon in segmentation:
                    _require(
                        isinstance(polygon, list) and len(polygon) % 2 == 0,
                        path,
                        f"{what}: a polygon must be a flat list of x, y pairs",
                    )
                    _require(
                        len(polygon) >= 6,
                        path,
                        f"{what}: polygon with {len(polygon) // 2} points; at least 3 are needed",
                    )
            else:
                _require(
                    isinstance(segmentation, dict) and {"size", "counts"} <= segmentation.keys(),
                    path,
                    f"{what}: segmentation is neither polygons nor an RLE with size and counts",
                )
            image["anns"].append(ann)
        images = [
            CocoImage(
                id=image_id,
                file=entry["file"],
                height=_integer(entry.get("height", 0), path, f"image {image_id}: height"),
                width=_integer(entry.get("width", 0), path, f"image {image_id}: width"),
                annotations=tuple(entry["anns"]),
            )
            for image_id, entry in entries.items()
        ]
        return cls(path, names, images, labels)

    def _decode_one(self, ann: dict[str, Any], shape: tuple[int, int], what: str) -> np.ndarray:
        """One annotation's ``(H, W)`` bool mask."""
        from pycocotools import mask as mask_utils

        height, width = shape
        segmentation = ann["segmentation"]
        if isinstance(segmentation, list):
            rles = mask_utils.frPyObjects(
                [list(map(float, p)) for p in segmentation], height, width
            )
            rle = mask_utils.merge(rles)
        else:
            size = [int(v) for v in segmentation["size"]]
            _require(
                size == [height, width],
                self.path,
                f"{what}: RLE size {size[1]}x{size[0]} but the image is {width}x{height} (WxH)",
            )
            counts = segmentation["counts"]
            try:
                runs = rle_string_counts(counts) if isinstance(counts, str) else list(counts)
            except (ValueError, TypeError) as exc:
                raise DataError(self.path, f"{what}: malformed RLE counts ({exc})") from exc
            _require(
                sum(runs) == height * width and min(runs, default=0) >= 0,
                self.path,
                f"{what}: RLE covers {sum(runs)} pixels but the image has {height * width}",
            )
            if isinstance(counts, str):
                rle = {"size": size, "counts": counts.encode("ascii")}
            else:
                rle = mask_utils.frPyObjects(segmentation, height, width)
        with warnings.catch_warnings():
            # pycocotools' decode trips numpy 2's copy-keyword deprecation; the result is right
            warnings.simplefilter("ignore", DeprecationWarning)
            return np.asarray(mask_utils.decode(rle), dtype=bool)

    def decode(
        self, index: int, shape: tuple[int, int]
    ) -> tuple[list[tuple[str, np.ndarray]], np.ndarray, np.ndarray, np.ndarray | None]:
        """Decode the annotations of image ``index`` for an image of ``shape`` ``(H, W)``.

        Returns:
            ``(objects, ids, labels, ignore)``: ``("annotation <id>", (H, W) bool)`` per
            non-crowd annotation, their ids ``(N,)`` and 1-based classes ``(N,)``, and the union
            of the crowd regions ``(H, W)`` bool (``None`` without any).

        Raises:
            DataError: a size mismatch or a bad RLE.
        """
        image = self.images[index]
        if image.height and image.width:
            _require(
                (image.height, image.width) == tuple(shape),
                image.file,
                f"image is {shape[1]}x{shape[0]} but {self.path.name} says "
                f"{image.width}x{image.height} (WxH)",
            )
        objects: list[tuple[str, np.ndarray]] = []
        ids: list[int] = []
        labels: list[int] = []
        ignore: np.ndarray | None = None
        for number, ann in enumerate(image.annotations):
            what = f"annotation {ann.get('id', '?')} (image {image.file.name})"
            mask = self._decode_one(ann, shape, what)
            if ann.get("iscrowd"):
                ignore = mask if ignore is None else ignore | mask
                continue
            objects.append((f"annotation {ann.get('id', '?')}", mask))
            ids.append(int(ann.get("id", number + 1)))
            labels.append(self.category_labels[int(ann["category_id"])])
        return objects, np.asarray(ids, np.int64), np.asarray(labels, np.int64), ignore
