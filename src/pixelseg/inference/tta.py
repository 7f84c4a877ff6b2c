"""Test-time augmentation: a dense model's maps (probabilities) averaged over flips and rotations.

The eight symmetries of the square (identity, three 90° rotations, and each of those flipped)
are applied to a batch, the model run on each, and each output turned back before the mean; a
model that is exactly symmetric gives its plain output back. Off by default (``pixelseg predict
--tta``): it costs eight forward passes, and whether it helps depends on the data (an aerial
scene has no "up", a street scene does).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pixelseg.inference.tiling import TileForward, TileSpec, predict_tiled

#: ``(rotations by 90°, flip left-right after rotating)`` for each of the eight symmetries.
SYMMETRIES: tuple[tuple[int, bool], ...] = tuple(
    (k, flip) for flip in (False, True) for k in range(4)
)


def _apply(batch: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    out = torch.rot90(batch, turns, dims=(-2, -1)) if turns else batch
    return out.flip(-1) if flip else out


def _undo(batch: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    out = batch.flip(-1) if flip else batch
    return torch.rot90(out, -turns, dims=(-2, -1)) if turns else out


def with_tta(
    forward: TileForward, symmetries: tuple[tuple[int, bool], ...] = SYMMETRIES
) -> TileForward:
    """``forward`` averaged over ``symmetries`` (default all eight), each output turned back.

    Args:
        forward: ``(B, C, h, w)`` -> ``(B, K, h, w)`` probabilities; it must accept the rotated
            ``(B, C, w, h)`` batch of a non-square input (a fully convolutional model does).
        symmetries: ``(quarter turns, flip)`` pairs.
    """

    def averaged(batch: torch.Tensor) -> torch.Tensor:
        total: torch.Tensor | None = None
        for turns, flip in symmetries:
            out = _undo(forward(_apply(batch, turns, flip)), turns, flip)
            total = out if total is None else total + out
        assert total is not None
        return total / len(symmetries)

    return averaged


def dense_probabilities(
    forward: TileForward,
    image: torch.Tensor,
    tiles: TileSpec | None,
    *,
    tta: bool,
    on_batch: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """``(K, H, W)`` maps (probabilities) of a normalised ``(C, H, W)`` image: in ``tiles`` (or
    one pass when ``None``), averaged over the eight symmetries when ``tta``; ``on_batch`` as
    :func:`~pixelseg.inference.tiling.predict_tiled`'s."""
    if tta:
        forward = with_tta(forward)
    if tiles is not None:
        return predict_tiled(forward, image, tiles, on_batch=on_batch)
    return forward(image[None])[0]
