"""Sliding-window prediction for images larger than one model pass.

An image is cut into tiles of ``size`` px that overlap by ``overlap`` px (evenly spaced, the last
tile flush with the edge, so no tile hangs over it); tiles are predicted ``batch`` at a time and
their class probabilities blended with a Gaussian window (nnU-Net: σ = size / 8, weights floored
at the smallest positive one so every pixel has weight), which damps the tile borders where a
network sees the least context. Memory: the ``(K, H, W)`` probability accumulator and one batch of
tiles; the image itself is already in memory (streaming rasters window by window is not done
here). :class:`~pixelseg.inference.predictor.Predictor` tiles an image when it holds more than
:data:`WHOLE_IMAGE_PIXELS` pixels or when asked to (``pixelseg predict --tile``), for every task
(:mod:`pixelseg.inference.tiled`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pixelseg.errors import ConfigError

#: Images up to this many pixels go through the model whole unless tiling is asked for.
WHOLE_IMAGE_PIXELS = 4096 * 4096
#: Gaussian σ as a fraction of the tile size (nnU-Net's 1/8).
SIGMA_SCALE = 1.0 / 8

#: ``(B, C, h, w)`` normalised tiles -> ``(B, K, h, w)`` float32 class probabilities on the CPU.
TileForward = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class TileSpec:
    """How an image is cut: tile ``size`` and ``overlap`` in px, tiles per model call.

    Raises:
        ValueError: a size under 32 px, an overlap outside ``[0, size)`` or a batch under 1.
    """

    size: int
    overlap: int
    batch: int = 4

    def __post_init__(self) -> None:
        if self.size < 32:
            raise ValueError(f"tile size must be at least 32 px, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"tile overlap must be in [0, {self.size}), got {self.overlap}")
        if self.batch < 1:
            raise ValueError(f"tile batch must be at least 1, got {self.batch}")

    @classmethod
    def from_crop(cls, crop_size: int | None) -> TileSpec:
        """The default for a run trained on ``crop_size`` crops: tiles of twice the crop (at
        least 512 px, a multiple of 32) overlapping by a quarter of a tile."""
        size = max(512, 2 * int(crop_size or 256))
        size = -(-size // 32) * 32
        return cls(size=size, overlap=size // 4)


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Start offsets of the tiles along one axis of ``length`` px.

    One tile (at 0) when the axis fits in one; otherwise the fewest tiles whose step is at most
    ``size - overlap``, evenly spaced, the first at 0 and the last ending at ``length``.
    """
    if length <= size:
        return [0]
    count = math.ceil((length - size) / (size - overlap)) + 1
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def gaussian_window(height: int, width: int, sigma_scale: float = SIGMA_SCALE) -> torch.Tensor:
    """``(height, width)`` float32 weights: a Gaussian centred on the tile, peak 1, no zeros."""

    def axis(n: int) -> torch.Tensor:
        position = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        sigma = max(n * sigma_scale, 1e-6)
        return torch.exp(-0.5 * (position / sigma) ** 2)

    window = axis(height)[:, None] * axis(width)[None, :]
    window = window / window.max()
    positive = window[window > 0]
    floor = float(positive.min()) if positive.numel() else 1.0
    return window.clamp(min=floor).float()


def tile_grid(height: int, width: int, spec: TileSpec) -> tuple[list[int], list[int], int, int]:
    """The tiles' row starts, column starts, height and width for an image (a tile is never
    larger than the image)."""
    tile_h, tile_w = min(spec.size, height), min(spec.size, width)
    rows = tile_starts(height, tile_h, min(spec.overlap, tile_h - 1))
    cols = tile_starts(width, tile_w, min(spec.overlap, tile_w - 1))
    return rows, cols, tile_h, tile_w


def tiles_of(height: int, width: int, spec: TileSpec) -> list[tuple[int, int, int, int]]:
    """The ``(top, left, tile height, tile width)`` of every tile of an image, row by row."""
    rows, cols, tile_h, tile_w = tile_grid(height, width, spec)
    return [(top, left, tile_h, tile_w) for top in rows for left in cols]


def predict_tiled(
    forward: TileForward,
    image: torch.Tensor,
    spec: TileSpec,
    *,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Blended ``(K, H, W)`` class probabilities of a normalised ``(C, H, W)`` image.

    Args:
        forward: the model on a batch of tiles (see :data:`TileForward`).
        image: the whole normalised image, on the CPU.
        spec: tile size, overlap and batch.
        on_batch: called with the number of tiles after each batch (a progress bar).

    Returns:
        Probabilities summing to 1 over the classes at every pixel.
    """
    _, height, width = image.shape
    tiles = tiles_of(height, width, spec)
    window = gaussian_window(tiles[0][2], tiles[0][3])
    total: torch.Tensor | None = None
    weight = torch.zeros(height, width)
    for first in range(0, len(tiles), spec.batch):
        group = tiles[first : first + spec.batch]
        batch = torch.stack([image[:, t : t + h, x : x + w] for t, x, h, w in group])
        probs = forward(batch).float()
        if total is None:
            total = torch.zeros(probs.shape[1], height, width)
        for (top, left, h, w), tile_probs in zip(group, probs):
            total[:, top : top + h, left : left + w] += tile_probs * window
            weight[top : top + h, left : left + w] += window
        if on_batch is not None:
            on_batch(len(group))
    assert total is not None
    return total / weight


def choose_tiles(
    tile: str | TileSpec, *, size: tuple[int, int], crop_size: int | None
) -> TileSpec | None:
    """The tiles for one ``(H, W)`` image, or ``None`` for one whole-image pass.

    ``tile`` is ``"off"``, ``"auto"`` (tile an image over :data:`WHOLE_IMAGE_PIXELS`, with
    :meth:`TileSpec.from_crop`) or a :class:`TileSpec` (tile every image larger than one tile).
    Every task tiles (:mod:`pixelseg.inference.tiled` says how objects cross the seams).

    Raises:
        ConfigError: an unknown ``tile`` word.
    """
    height, width = size
    if tile == "off":
        return None
    if isinstance(tile, TileSpec):
        return tile if max(height, width) > tile.size else None
    if tile != "auto":
        raise ConfigError(f"tile must be 'auto', 'off' or a size in px, got {tile!r}")
    if height * width > WHOLE_IMAGE_PIXELS:
        return TileSpec.from_crop(crop_size)
    return None
