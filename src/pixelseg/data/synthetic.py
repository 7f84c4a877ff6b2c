"""Synthetic semantic scenes written as real files, so the demo and tests run the real pipeline.

Each scene is a small aerial-like picture: background ground, vegetation blobs, a road band and
one or two tiny buildings. The classes are strongly imbalanced on purpose (buildings stay near
0.5 %, always under 2 % of pixels), which is what ``pixelseg check`` must diagnose. Two variants:

* ``"rgb"`` — 8-bit RGB PNG images with index PNG masks, a 2-pixel void frame (``255``);
* ``"multiband"`` — 6-band 16-bit GeoTIFF images with a GDAL nodata value (``0``) over a strip of
  some images, and index PNG masks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("background", "vegetation", "road", "building")
VOID = 255
NODATA = 0
VARIANTS = ("rgb", "multiband")
_RGB_MEANS = np.array([[150, 120, 90], [40, 140, 50], [90, 90, 100], [210, 60, 60]], float)
# Six-band "reflectances" per class, in 16-bit units; bands 4-6 separate vegetation.
_BAND_MEANS = np.array(
    [
        [1800, 1600, 1500, 2200, 2600, 2400],
        [600, 900, 700, 4200, 2000, 1200],
        [1300, 1300, 1350, 1500, 1700, 1800],
        [2600, 1200, 1100, 1600, 3000, 3200],
    ],
    float,
)


def synthetic_label_map(size: int, rng: np.random.Generator) -> np.ndarray:
    """One scene's ``(size, size)`` uint8 class map (no void)."""
    yy, xx = np.mgrid[0:size, 0:size]
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(2, 4))):
        cy, cx = rng.uniform(0, size, 2)
        ry, rx = rng.uniform(0.12, 0.25, 2) * size
        label[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = 1
    width = max(2, size // 10)
    start = int(rng.integers(0, size - width))
    if rng.random() < 0.5:
        label[start : start + width, :] = 2
    else:
        label[:, start : start + width] = 2
    side = max(2, size // 16)
    for _ in range(int(rng.integers(1, 3))):
        y, x = rng.integers(0, size - side, 2)
        label[y : y + side, x : x + side] = 3
    return label


def _render(
    label: np.ndarray, means: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """``(H, W, C)`` float image: class signature plus smooth texture plus pixel noise."""
    image = means[label]
    size = label.shape[0]
    coarse = rng.normal(0, noise, (size // 8 + 1, size // 8 + 1, 1))
    texture = np.kron(coarse, np.ones((8, 8, 1)))[:size, :size]
    return image + texture + rng.normal(0, noise, image.shape)


def _write_config(root: Path, variant: str, n_images: int, size: int) -> Path:
    n_val = max(1, round(0.25 * n_images))
    n_train = n_images - n_val
    suffix = "png" if variant == "rgb" else "tif"
    lines = [
        f"# synthetic {variant} semantic dataset written by pixelseg.data.synthetic",
        'task = "semantic"',
        "",
        "[data]",
        'format = "mask_folder"',
        'root = "."',
        f'images = "images/*.{suffix}"',
        'masks = "masks/{stem}.png"',
        f"classes = {json.dumps(list(CLASSES))}",
        f"ignore_index = {VOID}",
    ]
    if variant == "multiband":
        lines.append(f"nodata = {NODATA}")
    lines += [
        "",
        "[data.split]",
        'method = "range"',
        f'train = ["0-{n_train - 1}"]',
        'val = ["*"]',
        "",
        "[model]",
        'name = "unet_resnet18"',
        'options = { norm = "group" }',
        "",
        "[loss]",
        'name = "auto"',
        "",
        "[train]",
        "epochs = 5",
        "# A tiny set: an epoch is one pass over it (auto would draw 250 batches).",
        f"samples_per_epoch = {n_train}",
        "batch_size = 4",
        f"crop_size = {size - size % 32 or 32}",
        "lr = 0.001",
        "",
    ]
    path = root / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_synthetic_semantic(
    root: str | Path,
    *,
    n_images: int = 12,
    size: int = 64,
    variant: str = "rgb",
    seed: int = 0,
) -> Path:
    """Write a synthetic semantic dataset and its config under ``root``.

    Args:
        root: folder to create (``images/``, ``masks/`` and ``config.toml`` inside).
        n_images: number of scenes (a quarter, at least one, go to val).
        size: side of each square scene in pixels (at least 24).
        variant: ``"rgb"`` (8-bit PNG) or ``"multiband"`` (6-band 16-bit GeoTIFF with nodata).
        seed: random seed; the same seed writes the same files.

    Returns:
        Path of the generated ``config.toml``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")
    if n_images < 2 or size < 24:
        raise ValueError("need at least 2 images of at least 24x24 pixels")
    import tifffile

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(n_images):
        name = f"{index:03d}"
        label = synthetic_label_map(size, rng)
        mask = label.copy()
        if variant == "rgb":
            image = _render(label, _RGB_MEANS, 12.0, rng)
            mask[:2, :] = mask[-2:, :] = mask[:, :2] = mask[:, -2:] = VOID
            pixels = np.clip(np.round(image), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "images" / f"{name}.png")
        else:
            image = _render(label, _BAND_MEANS, 150.0, rng)
            pixels = np.clip(np.round(image), 1, 65535).astype(np.uint16)
            if index % 2 == 0:  # a no-data strip, as at the edge of a satellite swath
                pixels[:, : size // 8] = NODATA
            tifffile.imwrite(
                root / "images" / f"{name}.tif",
                np.ascontiguousarray(pixels.transpose(2, 0, 1)),
                photometric="minisblack",
                planarconfig="separate",
                extratags=[(42113, "s", 0, str(NODATA), True)],
            )
        Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    return _write_config(root, variant, n_images, size)
