"""An image made ready for the model, and the console line for a doubt about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pixelseg.data.raster import GeoReference


@dataclass
class PreparedImage:
    """One image ready for the model, with what its outputs need.

    Attributes:
        image: ``(H, W, C)`` as stored.
        normalized: ``(C, H, W)`` float32 model input; nodata pixels hold 0 (the band mean).
        nodata: ``(H, W)`` bool nodata pixels, or ``None``.
        georef: a GeoTIFF's CRS and transform, or ``None``.
        warnings: doubts about the image (far from the training images), one line each.
        path: the file, or ``None`` for an array.
    """

    image: np.ndarray
    normalized: torch.Tensor
    nodata: np.ndarray | None = None
    georef: GeoReference | None = None
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None


def print_warning(message: str) -> None:
    """Print one warning line on the console (rich, standard error)."""
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, highlight=False).print(
        f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True
    )
