"""The images ``pixelseg predict`` is given, and the folder under ``--out`` for each one's outputs.

The input tree is mirrored: an image found in a named folder keeps its path below that folder,
and images named directly keep their paths below their common parent, so ``a/t.tif`` and
``b/t.tif`` write ``a/t_label.tif`` and ``b/t_label.tif``. Two inputs that would still write the
same outputs are refused, naming both.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pixelseg.errors import DataError, PixelsegError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp"}


def output_folders(inputs: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """``(image, folder relative to --out)`` for every image named or found (sorted) in a folder.

    Raises:
        DataError: an input that does not exist, or two images whose outputs would collide.
        PixelsegError: no image at all.
    """
    found: list[tuple[Path, Path]] = []
    direct: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            found += [(image, image.parent.relative_to(path)) for image in images]
        elif path.is_file():
            direct.append(path)
        else:
            raise DataError(path, "input not found")
    if direct:
        parents = [str(p.parent.resolve()) for p in direct]
        common = Path(os.path.commonpath(parents))
        found += [(p, p.parent.resolve().relative_to(common)) for p in direct]
    if not found:
        raise PixelsegError("no input images found")
    seen: dict[tuple[Path, str], Path] = {}
    for image, folder in found:
        other = seen.setdefault((folder, image.stem), image)
        if other != image:
            raise DataError(
                image,
                f"its outputs would overwrite those of {other} (same name, same output folder "
                f"{folder.as_posix()}); predict them into different --out folders",
            )
    return found


def collect_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in the named folders."""
    return [image for image, _ in output_folders(inputs)]
