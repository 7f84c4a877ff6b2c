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


def _outline(rgb: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Draw each object's inner boundary in ``colour`` (two touching objects: two lines)."""
    rgb[find_boundaries(labels, mode="inner") & (labels > 0)] = colour


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
    _outline(rgb, labels, colour)
    picture = Image.fromarray(rgb)
    return atomic_write(path, lambda tmp: picture.save(tmp, format="PNG"))


#: Merge/split picture colours: true outlines, predicted outlines, merging predictions, split
#: true objects.
TRUE_LINE, PRED_LINE, MERGE_FILL, SPLIT_FILL = (
    (60, 220, 60),
    (255, 220, 0),
    (230, 40, 40),
    (40, 110, 240),
)


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    return (colour[0] / 255, colour[1] / 255, colour[2] / 255)


def _tinted(rgb: np.ndarray, where: np.ndarray, colour: tuple[int, int, int]) -> None:
    rgb[where] = (0.5 * rgb[where] + 0.5 * np.asarray(colour)).astype(np.uint8)


def merge_split_panels(
    image: np.ndarray, truth: np.ndarray, prediction: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB panels of one image: the truth outlined (its split objects tinted blue) and the
    prediction outlined (its merging objects tinted red), by the rule of
    :func:`~pixelseg.metrics.matching.merge_split_flags`."""
    from pixelseg.metrics.matching import label_image_overlap, merge_split_flags

    overlap, pred_ids, true_ids = label_image_overlap(prediction, truth)
    merging, _, split = merge_split_flags(overlap)
    base = display_image(np.asarray(image))
    left, right = base.copy(), base.copy()
    _tinted(left, np.isin(truth, true_ids[split]), SPLIT_FILL)
    _tinted(right, np.isin(prediction, pred_ids[merging]), MERGE_FILL)
    _outline(left, truth, TRUE_LINE)
    _outline(right, prediction, PRED_LINE)
    return left, right


def save_merge_split_examples(
    path: str | Path, rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]
) -> Path | None:
    """The images with the most merges and splits, one row each: truth | prediction, outlined.

    Args:
        path: destination ``.png``.
        rows: ``(title, image, true label image, predicted label image)``.

    Returns:
        The path written, or None without rows.
    """
    if not rows:
        return None
    from matplotlib.patches import Patch

    from pixelseg.report.evaluation_figures import pyplot, save_figure

    plt = pyplot()

    fig, axes = plt.subplots(len(rows), 2, figsize=(8, 4 * len(rows)), squeeze=False)
    for (title, image, truth, prediction), (ax_true, ax_pred) in zip(rows, axes):
        left, right = merge_split_panels(image, truth, prediction)
        ax_true.imshow(left)
        ax_true.set_title(f"{title}\ntruth (blue: split)", fontsize=9)
        ax_pred.imshow(right)
        ax_pred.set_title("prediction (red: merges)", fontsize=9)
        for ax in (ax_true, ax_pred):
            ax.axis("off")
    legend = [
        Patch(color=_rgb(TRUE_LINE), label="true outline"),
        Patch(color=_rgb(PRED_LINE), label="predicted outline"),
        Patch(color=_rgb(SPLIT_FILL), label="true object split in two or more"),
        Patch(color=_rgb(MERGE_FILL), label="prediction merging two or more"),
    ]
    fig.legend(handles=legend, loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, path)
