"""``pixelseg predict``: every task's outputs for image files or folders, resumable."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.console import Console

from pixelseg.engine.progress import progress_bar
from pixelseg.errors import DataError, PixelsegError
from pixelseg.inference.outputs import output_writer
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


def output_paths(
    out: Path, image: Path, *, label: str = "label", suffix: str = ".png"
) -> tuple[Path, Path]:
    """Where the label image (``<stem>_<label><suffix>``) and the overlay PNG of ``image`` go."""
    return out / f"{image.stem}_{label}{suffix}", out / f"{image.stem}_overlay.png"


def label_suffix(image: Path) -> str:
    """``.tif`` for a georeferenced input (its labels become a GeoTIFF), else ``.png``."""
    from pixelseg.data.io import read_header

    try:
        georeferenced = read_header(image).georef is not None
    except DataError:
        return ".png"  # unreadable: predicting it says so
    return ".tif" if georeferenced else ".png"


def predict_files(
    predictor: Predictor,
    files: list[Path],
    out: Path,
    *,
    probabilities: bool = False,
    warnings: list[str] | None = None,
) -> tuple[int, int]:
    """Write each image's outputs (see :mod:`pixelseg.inference.outputs`) into ``out``.

    An image whose outputs exist whole is skipped, so a killed run resumes where it stopped.

    Args:
        predictor: the trained run.
        files: the images.
        out: the output folder.
        probabilities: also write each image's class probabilities (``<stem>_probs.tif``).
        warnings: a list that receives the Predictor's warnings (images far from the training
            images), which are also printed.

    Returns:
        ``(written, skipped)`` counts.

    Raises:
        DataError: an unreadable image, or one whose band count or dtype differs from the
            training images' (naming the file).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = predictor.info
    writer = output_writer(predictor.task.prediction_type, out, info, probabilities=probabilities)
    written = skipped = 0
    with progress_bar("predict", total=len(files)) as advance:
        for path in files:
            suffix = label_suffix(path)
            label_path, overlay_path = output_paths(out, path, label=writer.label, suffix=suffix)
            if writer.is_done(path, label_path, overlay_path):
                skipped += 1
            else:
                prepared = predictor.load(path)
                prediction = predictor.predict_prepared(prepared)
                writer.write(path, prepared, prediction, label_path, overlay_path)
                if warnings is not None:
                    warnings += prepared.warnings
                written += 1
            advance()
    writer.close()
    return written, skipped


def predict_command(
    run_dir: str, inputs: list[str], *, out: str, device: str, probabilities: bool = False
) -> int:
    """The ``pixelseg predict`` subcommand.

    Args:
        run_dir: the trained run.
        inputs: image files or folders.
        out: the output folder.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        probabilities: also write the class probabilities as float32 GeoTIFFs.
    """
    files = collect_inputs(inputs)
    predictor = Predictor.from_run(run_dir, device=device)
    out_dir = Path(out)
    warnings: list[str] = []
    written, skipped = predict_files(
        predictor, files, out_dir, probabilities=probabilities, warnings=warnings
    )
    console = Console(highlight=False)
    console.print(
        f"predicted {written} image(s), skipped {skipped} already done; outputs in {out_dir}"
    )
    if warnings:
        console.print(
            f"[yellow]{len(warnings)} image(s) far from the training images[/yellow] (warned "
            "above): check their predictions before trusting them",
            soft_wrap=True,
        )
    return 0
