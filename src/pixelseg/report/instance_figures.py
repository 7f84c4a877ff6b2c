"""Instance pictures: 16-bit label PNGs and object contours over the image (written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries

from pixelseg.files import atomic_write
from pixelseg.report.figures import display_image

MAX_LABEL_16BIT = 65535


def save_label_png16(path: str | Path, label_image: np.ndarray) -> Path:
    """Write an instance label image as a 16-bit greyscale PNG, atomically.

    Args:
        path: destination ``.png``.
        label_image: ``(H, W)`` integer label image, 0 = background, ids up to 65535.

    Returns:
        The destination path.

    Raises:
        ValueError: not 2-D, negative ids, or ids above 65535.
    """
    labels = np.asarray(label_image)
    if labels.ndim != 2:
        raise ValueError(f"label image must be (H, W), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > MAX_LABEL_16BIT):
        raise ValueError(
            f"label ids must be in 0..{MAX_LABEL_16BIT} for a 16-bit PNG, got "
            f"{labels.min()}..{labels.max()}"
        )
    picture = Image.fromarray(labels.astype(np.uint16))
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


def save_contour_overlay(
    path: str | Path,
    image: np.ndarray,
    label_image: np.ndarray,
    *,
    colour: tuple[int, int, int] = (255, 255, 0),
) -> Path:
    """Draw each object's contour over the image and write an 8-bit RGB PNG, atomically.

    Contours are the objects' inner boundaries, so two touching objects show two lines.

    Args:
        path: destination ``.png``.
        image: ``(H, W, C)`` or ``(H, W)`` image of any dtype (non-8-bit is stretched).
        label_image: ``(H, W)`` integer label image, 0 = background.
        colour: RGB colour of the contours.

    Returns:
        The destination path.
    """
    rgb = display_image(np.asarray(image)).copy()
    labels = np.asarray(label_image)
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"label image {labels.shape} and image {rgb.shape[:2]} differ in size")
    rgb[find_boundaries(labels, mode="inner") & (labels > 0)] = colour
    picture = Image.fromarray(rgb)
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))
