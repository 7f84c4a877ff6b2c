"""``pixelseg predict``: label PNGs (paletted) and overlays for files or folders; resumable."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from rich.console import Console

from pixelseg.engine.progress import progress_bar
from pixelseg.errors import DataError, PixelsegError
from pixelseg.inference.predictor import Predictor

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp"}


def collect_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in the named folders."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(path, "input not found")
    if not files:
        raise PixelsegError("no input images found")
    return files


def output_paths(out: Path, image: Path, *, label: str = "label") -> tuple[Path, Path]:
    """Where the label PNG (``<stem>_<label>.png``) and the overlay PNG of ``image`` go."""
    return out / f"{image.stem}_{label}.png", out / f"{image.stem}_overlay.png"


def read_model_input(path: Path, in_channels: int) -> np.ndarray:
    """Read ``path`` as ``(H, W, C)`` for a model trained on ``in_channels`` bands.

    Raises:
        DataError: unreadable, or a band count the model was not trained on (naming the file).
    """
    from pixelseg.data.io import read_image

    image = read_image(path)
    if image.shape[2] != in_channels:
        raise DataError(
            path, f"image has {image.shape[2]} bands; the model was trained on {in_channels}"
        )
    return image


def predict_each(
    files: list[Path],
    out: Path,
    predict_one: Callable[[Path, Path, Path], None],
    *,
    label: str = "label",
    is_done: Callable[[Path], bool] | None = None,
) -> tuple[int, int]:
    """Call ``predict_one(image, label_path, overlay_path)`` for each file not done yet.

    Every output is written atomically, so a file that exists is whole: an image whose label and
    overlay PNGs exist (and that ``is_done`` accepts, when given) is skipped, and a killed run
    resumes where it stopped.

    Returns:
        ``(written, skipped)`` counts.
    """
    written = skipped = 0
    with progress_bar("predict", total=len(files)) as advance:
        for path in files:
            label_path, overlay_path = output_paths(out, path, label=label)
            done = label_path.exists() and overlay_path.exists()
            if done and (is_done is None or is_done(path)):
                skipped += 1
            else:
                predict_one(path, label_path, overlay_path)
                written += 1
            advance()
    return written, skipped


def predict_files(predictor: Predictor, files: list[Path], out: Path) -> tuple[int, int]:
    """Write ``<stem>_label.png`` (paletted) and ``<stem>_overlay.png`` for each image.

    Returns:
        ``(written, skipped)`` counts (see :func:`predict_each`).
    """
    from pixelseg.report.figures import colorize, overlay, save_png

    palette = predictor.info.palette

    def predict_one(path: Path, label_path: Path, overlay_path: Path) -> None:
        image = read_model_input(path, predictor.info.in_channels)
        label_map = predictor.predict(image).label_map.numpy()
        save_png(overlay_path, overlay(image, colorize(label_map, palette)))
        save_png(label_path, label_map, palette=palette)

    return predict_each(files, out, predict_one)


def predict_command(run_dir: str, inputs: list[str], *, out: str, device: str) -> int:
    """The ``pixelseg predict`` subcommand."""
    from pixelseg.engine.run_dir import read_run
    from pixelseg.engine.setup import task_module

    _, info = read_run(run_dir)
    files = collect_inputs(inputs)
    out_dir = Path(out)
    if info.task == "semantic":
        predictor = Predictor.from_run(run_dir, device=device)
        written, skipped = predict_files(predictor, files, out_dir)
    else:
        module = task_module(info.task)
        written, skipped = module.predict_files(run_dir, files, out_dir, device=device)
    Console(highlight=False).print(
        f"predicted {written} image(s), skipped {skipped} already done; outputs in {out_dir}"
    )
    return 0
