"""Instances across tile seams: one object, one id, wherever the seams fall."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from pixelseg.inference.predictor import Predictor
from pixelseg.inference.seams import TileObjects, core_bounds, merge_tile_objects
from pixelseg.inference.tiled import predict_objects_tiled
from pixelseg.inference.tiling import TileSpec, tile_starts
from pixelseg.postprocess.masks import instance_prediction, relabel_sequential
from pixelseg.structures import InstancePrediction, Prediction, Region


@pytest.mark.parametrize(("length", "size", "overlap"), [(300, 96, 40), (97, 96, 8), (50, 96, 8)])
def test_tile_cores_partition_the_axis(length: int, size: int, overlap: int) -> None:
    tile = min(size, length)
    starts = tile_starts(length, tile, min(overlap, tile - 1))
    cores = core_bounds(starts, tile, length)
    assert cores[0][0] == 0 and cores[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cores))
    for start, (low, high) in zip(starts, cores):
        assert start <= low < high <= start + tile  # a core lies inside its tile


def touching_discs(size: int, radius: int, seed: int) -> np.ndarray:
    """``(size, size)`` label image of discs on a jittered grid, neighbours touching."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((size, size), np.int32)
    step = 2 * radius - 2  # closer than a diameter: neighbours overlap and touch
    count = 0
    for cy in range(radius, size - radius, step):
        for cx in range(radius, size - radius, step):
            count += 1
            jy, jx = rng.integers(-2, 3, size=2)
            disc = (yy - cy - jy) ** 2 + (xx - cx - jx) ** 2 <= radius**2
            labels[disc & (labels == 0)] = count
    return relabel_sequential(labels)


def oracle(truth: np.ndarray) -> Callable[[torch.Tensor, Region], Prediction]:
    """A perfect instance model of ``truth``: a tile's objects are the truth cut to the tile.

    The tile's position comes from the first channel of the fake image (its row and column).
    """

    def predict_tile(crop: torch.Tensor, region: Region) -> Prediction:
        top, left = int(crop[0, 0, 0]), int(crop[1, 0, 0])
        h, w = region.size
        cut = relabel_sequential(truth[top : top + h, left : left + w])
        scores = np.linspace(1.0, 0.5, int(cut.max()), dtype=np.float32)
        return instance_prediction(cut, scores)

    return predict_tile


def position_image(size: int) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return torch.stack([rows, cols]).float()


def test_objects_cut_by_seams_come_out_whole_with_one_id_each() -> None:
    truth = touching_discs(300, radius=12, seed=0)
    spec = TileSpec(96, 40)  # the overlap exceeds the largest object (25 px across)
    merged = predict_objects_tiled(oracle(truth), position_image(300), spec)
    assert merged.cut == 0
    assert int(merged.label_image.max()) == int(truth.max()) == len(merged.scores)
    # Every true object is exactly one predicted object, pixel for pixel.
    for index, box in enumerate(ndimage.find_objects(truth)):
        assert box is not None
        true_mask = truth == index + 1
        ids = np.unique(merged.label_image[true_mask])
        assert ids.size == 1 and ids[0] > 0, f"object {index + 1} split into {ids}"
        assert np.array_equal(merged.label_image == ids[0], true_mask)
    # The seams did cut objects: without the core rule tiles would disagree.
    starts = tile_starts(300, 96, 40)
    crossing = [
        k for k, box in enumerate(ndimage.find_objects(truth))
        if box is not None and any(box[1].start < s < box[1].stop for s in starts[1:])
    ]  # fmt: skip
    assert crossing


def test_an_overlap_smaller_than_the_objects_is_reported() -> None:
    truth = touching_discs(200, radius=12, seed=1)
    merged = predict_objects_tiled(oracle(truth), position_image(200), TileSpec(64, 4))
    assert merged.cut > 0


def test_the_same_object_found_by_two_tiles_is_kept_once() -> None:
    # One 10x10 square seen by two tiles (the right one starts at column 10), one pixel apart:
    # the left copy's centroid (24.5) lies in the left core, the right one's (25.5) in the right.
    left_tile = np.zeros((20, 40), np.int32)
    left_tile[5:15, 20:30] = 1
    right_tile = np.zeros((20, 40), np.int32)
    right_tile[5:15, 11:21] = 1
    tiles = [
        TileObjects(0, 0, left_tile, np.array([0.9]), np.array([1]), (0, 20, 0, 25), (False,) * 4),
        TileObjects(
            0, 10, right_tile, np.array([0.8]), np.array([1]), (0, 20, 25, 50), (False,) * 4
        ),
    ]
    merged = merge_tile_objects(tiles, (20, 50))
    assert int(merged.label_image.max()) == 1 and merged.duplicates == 1
    assert merged.scores.tolist() == pytest.approx([0.9])


def test_a_mask_rcnn_run_predicts_in_tiles_with_unique_ids(
    tmp_path: Path, untrained_run: Callable[[str, Path], tuple[Path, Path]]
) -> None:
    from PIL import Image

    run_dir, image = untrained_run("instance", tmp_path)
    big = np.tile(np.asarray(Image.open(image).convert("RGB")), (3, 3, 1))  # 192 x 192
    prediction = Predictor.from_run(run_dir, tile=TileSpec(128, 32)).predict(big)
    assert isinstance(prediction, InstancePrediction)
    assert prediction.label_image.shape == (192, 192)
    ids = np.unique(prediction.label_image)
    assert ids.tolist() == list(range(int(ids.max()) + 1))  # 0..N without gaps
    assert prediction.count == int(ids.max()) == len(prediction.labels)


def test_a_watershed_run_tiles_its_maps_and_matches_one_pass_on_a_per_pixel_model(
    tmp_path: Path, untrained_run: Callable[[str, Path], tuple[Path, Path]]
) -> None:
    run_dir, image = untrained_run("watershed", tmp_path)
    whole_predictor = Predictor.from_run(run_dir, tile="off")
    tiled_predictor = Predictor.from_run(run_dir, tile=TileSpec(32, 12))
    # A per-pixel model gives the same maps in every tile, so the objects must match exactly.
    torch.manual_seed(0)
    bands = whole_predictor.info.in_channels
    outputs = whole_predictor.task.dense_forward(
        whole_predictor.model, torch.zeros(1, bands, 32, 32), autocast=whole_predictor.autocast
    ).shape[1]
    conv = torch.nn.Conv2d(bands, outputs, kernel_size=1).eval()
    whole_predictor.model = tiled_predictor.model = conv
    whole = whole_predictor.predict(image)
    tiled = tiled_predictor.predict(image)
    assert isinstance(whole, InstancePrediction) and isinstance(tiled, InstancePrediction)
    assert whole.class_probs is not None and tiled.class_probs is not None
    np.testing.assert_allclose(tiled.class_probs, whole.class_probs, atol=1e-5)
    assert np.array_equal(tiled.label_image, whole.label_image)
