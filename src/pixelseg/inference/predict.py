"""``pixelseg predict``: label PNGs (paletted) and overlays for files or folders; resumable."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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


def output_paths(out: Path, image: Path) -> tuple[Path, Path]:
    """Where the label PNG and the overlay PNG of ``image`` go."""
    return out / f"{image.stem}_label.png", out / f"{image.stem}_overlay.png"


def predict_files(predictor: Predictor, files: list[Path], out: Path) -> tuple[int, int]:
    """Predict each file; skip those whose outputs are already complete.

    Every output is written atomically, so a file that exists is whole and a killed run resumes
    where it stopped.

    Returns:
        ``(written, skipped)`` counts.
    """
    from pixelseg.data.io import read_image
    from pixelseg.report.figures import colorize, overlay, save_png

    info = predictor.info
    written = skipped = 0
    with progress_bar("predict", total=len(files)) as advance:
        for path in files:
            label_path, overlay_path = output_paths(out, path)
            if label_path.exists() and overlay_path.exists():
                skipped += 1
                advance()
                continue
            image = read_image(path)
            label_map = predictor.predict(image).label_map.numpy()
            save_png(overlay_path, overlay(image, colorize(label_map, info.palette)))
            save_png(label_path, label_map, palette=info.palette)
            written += 1
            advance()
    return written, skipped


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
