"""Synthetic instance data: touching round and elongated objects on a textured background.

Objects are ellipses, many placed right next to another so that they touch, like nuclei in a
clump; where two ellipses would overlap each pixel goes to the ellipse it is deepest inside, so
objects share a straight-ish border and never overlap. Each object is brighter inside and darker
at its rim, over a background with smooth texture and pixel noise. Two variants:

* ``"one_class"`` — every object is a ``"cell"`` (round or elongated);
* ``"two_class"`` — round objects are ``"round"`` (class 1), elongated ones ``"elongated"`` (2).

Written as instance label images (16-bit PNG, with a JSON of object classes for two classes) or
in the Kaggle layout (one binary PNG per object).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

VARIANTS = {"one_class": ("cell",), "two_class": ("round", "elongated")}
LAYOUTS = ("label_images", "kaggle")
_ROUND, _ELONGATED = 1, 2


def _place(
    size: int, rng: np.random.Generator, count: int
) -> list[tuple[float, float, float, float, float, int]]:
    """``(cy, cx, ry, rx, angle, shape)`` per ellipse, half of them next to an earlier one."""
    placed: list[tuple[float, float, float, float, float, int]] = []
    base = size / 12
    for _ in range(count * 20):
        if len(placed) == count:
            break
        shape = _ROUND if rng.random() < 0.5 else _ELONGATED
        radius = base * rng.uniform(0.7, 1.2)
        ry, rx = (radius, radius) if shape == _ROUND else (radius * 0.6, radius * 1.7)
        angle = rng.uniform(0, np.pi)
        reach = max(ry, rx)
        if placed and rng.random() < 0.6:
            cy0, cx0, ry0, rx0 = placed[int(rng.integers(len(placed)))][:4]
            direction = rng.uniform(0, 2 * np.pi)
            # A little closer than the radii add up to: the two ellipses meet and share a border.
            distance = 0.85 * (min(ry0, rx0) + min(ry, rx))
            cy, cx = cy0 + distance * np.sin(direction), cx0 + distance * np.cos(direction)
        else:
            cy, cx = rng.uniform(reach, size - reach, 2)
        if not (reach / 2 <= cy <= size - reach / 2 and reach / 2 <= cx <= size - reach / 2):
            continue
        if any(
            np.hypot(cy - p[0], cx - p[1]) < 0.7 * (min(ry, rx) + min(p[2], p[3])) for p in placed
        ):
            continue
        placed.append((cy, cx, ry, rx, angle, shape))
    return placed


def synthetic_instance_image(
    size: int,
    rng: np.random.Generator,
    *,
    num_objects: int | None = None,
    two_class: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One synthetic image with its instance labels, in memory.

    Args:
        size: side of the square image (at least 32).
        rng: random generator.
        num_objects: how many ellipses to try to place (default: about ``size / 8``).
        two_class: classes round = 1 and elongated = 2; otherwise every object is class 1.

    Returns:
        ``image`` ``(H, W, 3)`` uint8, ``label_image`` ``(H, W)`` int32 with objects ``1..N``,
        and ``classes`` ``(N,)`` int64, the 1-based class of object ``k`` at ``k - 1``.
    """
    if size < 32:
        raise ValueError("synthetic instance images need a side of at least 32 pixels")
    count = num_objects if num_objects is not None else max(3, size // 8)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    depth = np.full((size, size), np.inf)  # normalised ellipse radius of the owning object
    label_image = np.zeros((size, size), dtype=np.int32)
    shapes = []
    for cy, cx, ry, rx, angle, shape in _place(size, rng, count):
        dy, dx = yy - cy, xx - cx
        along = dx * np.cos(angle) + dy * np.sin(angle)
        across = -dx * np.sin(angle) + dy * np.cos(angle)
        radius = np.sqrt((along / rx) ** 2 + (across / ry) ** 2)
        wins = (radius <= 1.0) & (radius < depth)
        shapes.append(shape)
        label_image[wins] = len(shapes)
        depth[wins] = radius[wins]
    present = np.unique(label_image)
    present = present[present != 0]
    remap = np.zeros(len(shapes) + 1, dtype=np.int32)
    remap[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    label_image = remap[label_image]
    kinds = np.asarray([shapes[k - 1] for k in present], dtype=np.int64)
    classes = kinds if two_class else np.ones(len(kinds), dtype=np.int64)
    coarse = rng.normal(0, 10, (size // 8 + 1, size // 8 + 1, 1))
    texture = np.kron(coarse, np.ones((8, 8, 1)))[:size, :size]
    inside = np.where(label_image > 0, 1.0 - 0.6 * np.clip(depth, 0, 1) ** 4, 0.0)
    tint = np.array([[60, 50, 70], [150, 90, 170], [170, 120, 90]], dtype=np.float64)
    # One colour per class, so the two-class variant can be told apart by colour and shape.
    kind_of = np.concatenate([[0], classes if two_class else np.ones(len(kinds), np.int64)])
    colour = tint[kind_of[label_image]]
    image = tint[0] + (colour - tint[0]) * inside[..., None] + texture
    image += rng.normal(0, 6, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label_image, classes


def _write_config(root: Path, variant: str, layout: str, n_images: int, size: int) -> Path:
    n_val = max(1, round(0.25 * n_images))
    classes = VARIANTS[variant]
    if layout == "kaggle":
        data = [
            'format = "kaggle_instances"',
            'images = "*/images/*.png"',
            'masks = "{stem}/masks/*.png"',
        ]
        if variant == "two_class":
            data.append('object_classes = "{stem}/classes.json"')
    else:
        data = [
            'format = "instance_labels"',
            'images = "images/*.png"',
            'masks = "labels/{stem}.png"',
        ]
        if variant == "two_class":
            data.append('object_classes = "labels/{stem}.json"')
    lines = [
        f"# synthetic {variant} instance dataset ({layout}) written by pixelseg",
        'task = "instance"',
        "",
        "[data]",
        'root = "."',
        *data,
        f"classes = {json.dumps(list(classes))}",
        "",
        "[data.split]",
        'method = "range"',
        f'train = ["0-{n_images - n_val - 1}"]',
        'val = ["*"]',
        "",
        "[model]",
        'name = "maskrcnn_resnet18_fpn"',
        "",
        "[train]",
        "epochs = 5",
        "# A tiny set: an epoch is one pass over it (auto would draw 250 batches).",
        f"samples_per_epoch = {n_images - n_val}",
        "batch_size = 2",
        f"crop_size = {size - size % 32 or 32}",
        "lr = 0.001",
        "",
    ]
    path = root / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_synthetic_instances(
    root: str | Path,
    *,
    n_images: int = 8,
    size: int = 96,
    variant: str = "one_class",
    layout: str = "label_images",
    seed: int = 0,
) -> Path:
    """Write a synthetic instance dataset and its config under ``root``.

    Args:
        root: folder to create.
        n_images: number of images (a quarter, at least one, go to val).
        size: side of each square image in pixels (at least 32).
        variant: ``"one_class"`` or ``"two_class"``.
        layout: ``"label_images"`` (``images/``, ``labels/`` 16-bit PNGs) or ``"kaggle"``
            (``<id>/images/<id>.png``, ``<id>/masks/<k>.png``).
        seed: random seed; the same seed writes the same files.

    Returns:
        Path of the generated ``config.toml``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if n_images < 2:
        raise ValueError("need at least 2 images")
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = VARIANTS[variant]
    for index in range(n_images):
        name = f"{index:03d}"
        image, label_image, classes = synthetic_instance_image(
            size, rng, two_class=variant == "two_class"
        )
        if layout == "kaggle":
            (root / name / "images").mkdir(parents=True, exist_ok=True)
            (root / name / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / name / "images" / f"{name}.png")
            table = {}
            for k in range(1, len(classes) + 1):
                mask = np.where(label_image == k, 255, 0).astype(np.uint8)
                Image.fromarray(mask).save(root / name / "masks" / f"{k:03d}.png")
                table[f"{k:03d}"] = names[classes[k - 1] - 1]
            class_file = root / name / "classes.json"
        else:
            (root / "images").mkdir(parents=True, exist_ok=True)
            (root / "labels").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "images" / f"{name}.png")
            Image.fromarray(label_image.astype(np.uint16)).save(root / "labels" / f"{name}.png")
            table = {str(k): names[classes[k - 1] - 1] for k in range(1, len(classes) + 1)}
            class_file = root / "labels" / f"{name}.json"
        if variant == "two_class":
            class_file.write_text(json.dumps(table), encoding="utf-8")
    return _write_config(root, variant, layout, n_images, size)
