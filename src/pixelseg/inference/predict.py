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


def output_paths(out: Path, image: Path, *, label: str = "label") -> tuple[Path, Path]:
    """Where the label PNG (``<stem>_<label>.png``) and the overlay PNG of ``image`` go."""
    return out / f"{image.stem}_{label}.png", out / f"{image.stem}_overlay.png"


def predict_files(predictor: Predictor, files: list[Path], out: Path) -> tuple[int, int]:
    """Write each image's outputs (see :mod:`pixelseg.inference.outputs`) into ``out``.

    An image whose outputs exist whole is skipped, so a killed run resumes where it stopped.

    Returns:
        ``(written, skipped)`` counts.

    Raises:
        DataError: an unreadable image, or one whose band count differs from the training
            images' (naming the file).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writer = output_writer(predictor.task.prediction_type, out, predictor.info)
    written = skipped = 0
    with progress_bar("predict", total=len(files)) as advance:
        for path in files:
            label_path, overlay_path = output_paths(out, path, label=writer.label)
            if writer.is_done(path, label_path, overlay_path):
                skipped += 1
            else:
                image, normalized = predictor.prepare(path)
                prediction = predictor.predict_normalized(normalized)
                writer.write(path, image, prediction, label_path, overlay_path)
                written += 1
            advance()
    writer.close()
    return written, skipped


def predict_command(run_dir: str, inputs: list[str], *, out: str, device: str) -> int:
    """The ``pixelseg predict`` subcommand."""
    files = collect_inputs(inputs)
    predictor = Predictor.from_run(run_dir, device=device)
    out_dir = Path(out)
    written, skipped = predict_files(predictor, files, out_dir)
    Console(highlight=False).print(
        f"predicted {written} image(s), skipped {skipped} already done; outputs in {out_dir}"
    )
    return 0
