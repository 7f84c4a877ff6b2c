"""One image through a model in tiles (or with test-time augmentation), for every task.

A task whose prediction comes from per-pixel maps (``Task.dense_output``: semantic
probabilities; watershed probabilities and distance) has its maps blended over the tiles
(:func:`~pixelseg.inference.tiling.predict_tiled`) and, with ``tta``, averaged over the eight
symmetries; the task then turns the whole image's maps into its prediction once, so a
watershed runs on seamless maps and no object is cut at a seam. A task that predicts a set of
objects (Mask R-CNN) predicts each tile alone and its objects are merged across the seams
(:func:`~pixelseg.inference.seams.merge_tile_objects`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import nn

from pixelseg.engine.progress import progress_bar
from pixelseg.engine.task import Autocast, Task
from pixelseg.errors import ConfigError
from pixelseg.inference.seams import MergedInstances, TileObjects, core_bounds, merge_tile_objects
from pixelseg.inference.tiling import TileSpec, tile_grid, tiles_of
from pixelseg.inference.tta import dense_probabilities
from pixelseg.postprocess.masks import instance_prediction
from pixelseg.structures import InstancePrediction, Prediction, Region

#: ``(tile (C, h, w), region) -> prediction`` of one tile.
TilePredict = Callable[[torch.Tensor, Region], Prediction]


def predict_objects_tiled(
    predict_tile: TilePredict,
    image: torch.Tensor,
    spec: TileSpec,
    *,
    ignore: np.ndarray | None = None,
    on_tile: Callable[[], None] | None = None,
) -> MergedInstances:
    """Objects of a normalised ``(C, H, W)`` image predicted tile by tile, merged at the seams.

    Args:
        predict_tile: the task's prediction of one tile (an :class:`InstancePrediction`).
        image: the whole normalised image.
        spec: tile size and overlap (``batch`` is unused: one tile per call).
        ignore: ``(H, W)`` pixels where no object may be found, or ``None``.
        on_tile: called after each tile (a progress bar).
    """
    _, height, width = image.shape
    rows, cols, tile_h, tile_w = tile_grid(height, width, spec)
    row_cores = dict(zip(rows, core_bounds(rows, tile_h, height)))
    col_cores = dict(zip(cols, core_bounds(cols, tile_w, width)))
    found: list[TileObjects] = []
    for top, left, h, w in tiles_of(height, width, spec):
        crop = image[:, top : top + h, left : left + w]
        tile_ignore = None if ignore is None else ignore[top : top + h, left : left + w]
        prediction = predict_tile(crop, Region((h, w), ignore=tile_ignore))
        if not isinstance(prediction, InstancePrediction):
            raise TypeError(f"a tile's prediction must be instances, got {type(prediction)}")
        found.append(
            TileObjects(
                top=top,
                left=left,
                label_image=prediction.label_image,
                scores=prediction.scores,
                labels=prediction.labels,
                core=(*row_cores[top], *col_cores[left]),
                inner_edges=(top > 0, top + h < height, left > 0, left + w < width),
            )
        )
        if on_tile is not None:
            on_tile()
    return merge_tile_objects(found, (height, width))


def predict_image(
    task: Task,
    model: nn.Module,
    image: torch.Tensor,
    *,
    autocast: Autocast,
    tiles: TileSpec | None,
    tta: bool,
    ignore: np.ndarray | None = None,
    warn: Callable[[str], None] | None = None,
) -> Prediction:
    """The task's prediction of a whole normalised ``(C, H, W)`` image in ``tiles`` and/or
    averaged over the symmetries (``tta``); see the module's rules.

    Raises:
        ConfigError: test-time augmentation asked of a task whose output is not dense.
    """
    height, width = image.shape[-2:]
    region = Region((height, width), ignore=ignore)
    if task.dense_output:
        forward = partial(task.dense_forward, model, autocast=autocast)
        total = 0 if tiles is None else len(tiles_of(height, width, tiles))
        with progress_bar("tiles", total=total or None) as advance:

            def on_batch(count: int) -> None:
                for _ in range(count):
                    advance()

            maps = dense_probabilities(forward, image, tiles, tta=tta, on_batch=on_batch)
        return task.from_dense(maps, region=region)
    if tta:
        raise ConfigError(
            f"test-time augmentation needs per-pixel maps; the {task.name!r} task predicts "
            "objects: predict without --tta"
        )
    assert tiles is not None

    def predict_tile(crop: torch.Tensor, tile_region: Region) -> Prediction:
        return task.predict(model, crop, autocast=autocast, region=tile_region)

    with progress_bar("tiles", total=len(tiles_of(height, width, tiles))) as advance:
        merged = predict_objects_tiled(predict_tile, image, tiles, ignore=ignore, on_tile=advance)
    if merged.cut and warn is not None:
        warn(
            f"{merged.cut} object(s) reached the edge of a {tiles.size}-px tile and may be cut: "
            f"raise --tile-overlap ({tiles.overlap} px) above the largest object"
        )
    return instance_prediction(merged.label_image, merged.scores, merged.labels)
