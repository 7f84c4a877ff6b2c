"""Watershed post-processing separates touching objects; tuning picks the better threshold."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from pixelseg.errors import ConfigError
from pixelseg.metrics.matching import label_image_overlap
from pixelseg.postprocess.tuning import tune_watershed
from pixelseg.postprocess.watershed import (
    WatershedParams,
    connected_components_instances,
    split_instances,
)
from pixelseg.tasks.watershed.targets import normalized_distance, watershed_targets


def _touching_discs() -> np.ndarray:
    labels = np.zeros((40, 60), dtype=np.int32)
    rr, cc = disk((20, 20), 10, shape=labels.shape)
    labels[rr, cc] = 1
    rr, cc = disk((20, 39), 10, shape=labels.shape)
    labels[rr, cc] = 2  # overwrites the overlap: the discs touch along a straight seam
    return labels


def _probs_from_labels(labels: np.ndarray) -> np.ndarray:
    """A confident (3, H, W) prediction: the one-hot targets, slightly softened."""
    class_map = watershed_targets(labels)["class_map"]
    one_hot = np.eye(3, dtype=np.float32)[class_map].transpose(2, 0, 1)
    return 0.9 * one_hot + 0.1 / 3


def _best_iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    overlap, _, _ = label_image_overlap(pred, truth)
    return overlap.iou.max(axis=0)


def test_watershed_splits_touching_discs_that_components_merge() -> None:
    truth = _touching_discs()
    probs = _probs_from_labels(truth)
    merged = connected_components_instances(1.0 - probs[0], threshold=0.5)
    assert merged.max() == 1  # the naive baseline sees one blob
    split = split_instances(probs, params=WatershedParams(min_size=5))
    assert split.dtype == np.int32 and split.max() == 2
    assert (_best_iou(split, truth) > 0.95).all()


def test_distance_markers_split_touching_discs() -> None:
    truth = _touching_discs()
    probs = _probs_from_labels(truth)
    distance = normalized_distance(truth)
    params = WatershedParams(markers="distance", h=0.3, min_size=5)
    split = split_instances(probs, params=params, distance=distance)
    assert split.max() == 2
    assert (_best_iou(split, truth) > 0.9).all()
    with pytest.raises(ValueError, match="distance"):
        split_instances(probs, params=params)


def test_small_objects_removed() -> None:
    probs = np.zeros((3, 20, 20), dtype=np.float32)
    probs[0] = 1.0
    probs[:, 2:10, 2:10] = np.array([0.0, 1.0, 0.0])[:, None, None]  # 64 px object
    probs[:, 15:17, 15:17] = np.array([0.0, 1.0, 0.0])[:, None, None]  # 4 px object
    assert split_instances(probs, params=WatershedParams(min_size=10)).max() == 1
    assert split_instances(probs, params=WatershedParams(min_size=1)).max() == 2


def test_tuning_picks_the_threshold_that_separates() -> None:
    truth = _touching_discs()
    probs = _probs_from_labels(truth)
    # A blurry seam: interior probability 0.55 across the boundary between the two discs, so
    # a marker threshold of 0.5 joins both interiors into one marker and 0.6 keeps them apart.
    seam = (truth > 0) & (probs[2] > 0.5) & (np.abs(np.arange(60) - 29.5) < 3)[None, :]
    probs[1][seam], probs[2][seam], probs[0][seam] = 0.55, 0.45, 0.0
    grid = {"interior_threshold": (0.5, 0.6, 0.95)}
    best, table = tune_watershed(
        [probs, probs], [truth, truth], grid, base=WatershedParams(min_size=5)
    )
    assert best.interior_threshold == 0.6
    assert [row["interior_threshold"] for row in table] == [0.5, 0.6, 0.95]
    scores = [row["matching_ap50_pooled"] for row in table]
    assert scores[1] == 1.0 and scores[0] < 1.0 and scores[2] < 1.0
    assert table[1]["tp"] == 4 and table[0]["fn"] >= 2
    with pytest.raises(ConfigError, match="bogus"):
        tune_watershed([probs], [truth], {"bogus": (1,)})


def _noisy_case() -> tuple[np.ndarray, np.ndarray]:
    """Touching discs plus a faint foreground speck with no interior: unseeded noise."""
    truth = _touching_discs()
    probs = _probs_from_labels(truth)
    probs[:, 2:8, 50:58] = np.array([0.2, 0.1, 0.7], dtype=np.float32)[:, None, None]
    return probs, truth


def test_tuning_drops_unseeded_noise_when_that_scores_better() -> None:
    probs, truth = _noisy_case()
    grid = {"keep_unseeded": (True, False)}
    best, table = tune_watershed([probs], [truth], grid, base=WatershedParams(min_size=5))
    assert best.keep_unseeded is False
    assert [(row["keep_unseeded"], row["fp"]) for row in table] == [(True, 1), (False, 0)]


def test_shared_watershed_scores_equal_each_grid_point_alone() -> None:
    # The search runs one watershed for grid points that differ only in the clean-up; every
    # row must still be what that point's own split_instances scores.
    from pixelseg.metrics.matching import pooled_ap50

    noisy, truth = _noisy_case()
    rng = np.random.default_rng(1)
    blurred = np.clip(noisy + rng.normal(0, 0.15, noisy.shape).astype(np.float32), 1e-3, None)
    blurred /= blurred.sum(0, keepdims=True)
    maps, truths = [noisy, blurred], [truth, truth]
    grid = {
        "interior_threshold": (0.4, 0.7),
        "keep_unseeded": (True, False),
        "min_size": (5, 40),
        "fill_holes": (True, False),
    }
    best, table = tune_watershed(maps, truths, grid)
    assert len(table) == 16
    for row in table:
        params = WatershedParams(**{k: row[k] for k in WatershedParams().to_dict()})
        alone = pooled_ap50([split_instances(m, params=params) for m in maps], truths)
        assert {k: row[k] for k in alone} == alone
    assert best.to_dict().items() <= max(table, key=lambda r: r["matching_ap50_pooled"]).items()
    with pytest.raises(ConfigError, match="no value"):
        tune_watershed(maps, truths, {"keep_unseeded": ()})
