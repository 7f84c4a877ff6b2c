"""Pictures: confusion matrices, colour label maps and overlays (PNG, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pixelseg.files import atomic_write


def colorize(
    label_map: np.ndarray, palette: list[list[int]], ignore_index: int | None = None
) -> np.ndarray:
    """``(H, W)`` class indices to ``(H, W, 3)`` uint8 colours (ignored pixels black)."""
    colours = np.zeros((max(len(palette), int(label_map.max(initial=0)) + 1), 3), dtype=np.uint8)
    colours[: len(palette)] = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    safe = label_map.copy()
    if ignore_index is not None:
        safe[label_map == ignore_index] = 0
    rgb = colours[np.clip(safe, 0, len(colours) - 1)]
    if ignore_index is not None:
        rgb[label_map == ignore_index] = 0
    return rgb


def display_image(image: np.ndarray) -> np.ndarray:
    """An ``(H, W, C)`` image of any dtype or band count as 8-bit RGB (percentile stretch)."""
    array: np.ndarray = image.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    array = array[..., :3] if array.shape[2] >= 3 else np.repeat(array[..., :1], 3, axis=2)
    if image.dtype != np.uint8:
        finite = array[np.isfinite(array)]
        low, high = np.percentile(finite, (1, 99)) if finite.size else (0.0, 1.0)
        array = (array - low) / max(high - low, 1e-6) * 255
    return np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)


def overlay(
    image: np.ndarray,
    colours: np.ndarray,
    alpha: float = 0.45,
    *,
    uncoloured: np.ndarray | None = None,
) -> np.ndarray:
    """Blend a colour label map over an image.

    Args:
        image: ``(H, W, C)`` of any dtype or band count (shown as by :func:`display_image`).
        colours: ``(H, W, 3)`` uint8 colours.
        alpha: weight of the colours.
        uncoloured: ``(H, W)`` bool pixels shown as the image alone (nodata), or ``None``.
    """
    base = display_image(image)
    blended = (1 - alpha) * base.astype(np.float32) + alpha * colours.astype(np.float32)
    result = np.clip(blended, 0, 255).astype(np.uint8)
    if uncoloured is not None:
        result[uncoloured] = base[uncoloured]
    return result


def save_png(
    path: str | Path, array: np.ndarray, *, palette: list[list[int]] | None = None
) -> Path:
    """Write a PNG atomically; with ``palette`` a paletted ('P' mode) label image."""
    if palette is not None:
        img = Image.fromarray(array.astype(np.uint8), mode="P")
        flat = [v for colour in palette for v in colour]
        img.putpalette(flat + [0] * (768 - len(flat)))
    elif array.dtype == np.uint16:
        img = Image.fromarray(array)
    else:
        img = Image.fromarray(array.astype(np.uint8))
    return atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def save_confusion_matrix(path: str | Path, matrix: Any, class_names: list[str]) -> Path:
    """Row-normalised confusion matrix (truth rows, prediction columns) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.float64)
    rows = counts.sum(1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    size = max(4.0, 0.5 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            if normalised[i, j] >= 0.01:
                colour = "white" if normalised[i, j] > 0.5 else "black"
                ax.text(
                    j,
                    i,
                    f"{normalised[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=colour,
                )
    ax.set_title("confusion matrix (rows sum to 1)")
    fig.tight_layout()
    result = atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return result
