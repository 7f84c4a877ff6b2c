"""Bootstrap intervals over images: they contain the estimate, shrink with more images, and
equal a plain loop over resamples."""

from __future__ import annotations

import numpy as np
import pytest

from pixelseg.metrics.bootstrap import pooled_ap50_interval, semantic_intervals


def confusions(count: int, seed: int) -> np.ndarray:
    """Per-image 3-class confusion matrices of a decent model with image-to-image variation."""
    rng = np.random.default_rng(seed)
    out = np.zeros((count, 3, 3), np.int64)
    for index in range(count):
        truth = rng.multinomial(1000, rng.dirichlet([4, 2, 1]))
        for k, n in enumerate(truth):
            hit = rng.uniform(0.5, 0.95)
            out[index, k] = rng.multinomial(n, np.where(np.arange(3) == k, hit, (1 - hit) / 2))
    return out


def miou(matrix: np.ndarray) -> float:
    tp = np.diag(matrix).astype(float)
    union = matrix.sum(0) + matrix.sum(1) - tp
    return float(np.mean(tp[union > 0] / union[union > 0]))


def test_the_interval_contains_the_estimate_and_shrinks_with_more_images() -> None:
    few, many = confusions(10, 0), confusions(300, 0)
    names = ["a", "b", "c"]
    small, large = semantic_intervals(few, names), semantic_intervals(many, names)
    for data, out in ((few, small), (many, large)):
        low, high = out["miou"]
        assert low <= miou(data.sum(0)) <= high
        for k, name in enumerate(names):
            tp = data[:, k, k].sum()
            iou = tp / (data[:, k].sum() + data[:, :, k].sum() - tp)
            assert out["per_class_iou"][name][0] <= iou <= out["per_class_iou"][name][1]
    assert (large["miou"][1] - large["miou"][0]) < (small["miou"][1] - small["miou"][0]) / 2
    assert small["images"] == 10 and small["resamples"] == 1000


def test_the_interval_equals_a_plain_loop_over_resamples() -> None:
    data = confusions(12, 3)
    out = semantic_intervals(data, ["a", "b", "c"], resamples=200, seed=7)
    rng = np.random.default_rng(7)
    drawn = rng.integers(0, 12, size=(200, 12))
    values = np.array([miou(data[row].sum(0)) for row in drawn])
    assert out["miou"] == pytest.approx([np.percentile(values, 2.5), np.percentile(values, 97.5)])


def test_a_class_absent_everywhere_has_no_interval_and_no_images_give_none() -> None:
    data = confusions(5, 1)
    data[:, 2, :] = 0
    data[:, :, 2] = 0
    out = semantic_intervals(data, ["a", "b", "c"])
    assert np.isnan(out["per_class_iou"]["c"]).all() and not np.isnan(out["miou"]).any()
    empty = semantic_intervals(np.zeros((0, 3, 3)), ["a", "b", "c"])
    assert np.isnan(empty["miou"]).all()


def test_the_pooled_ap50_interval_contains_the_pooled_score() -> None:
    rng = np.random.default_rng(0)
    counts = np.stack([rng.integers(5, 30, 40), rng.integers(0, 8, 40), rng.integers(0, 8, 40)], 1)
    tp, fp, fn = counts.sum(0)
    low, high = pooled_ap50_interval(counts)["ap50_pooled"]
    assert low < tp / (tp + fp + fn) < high
