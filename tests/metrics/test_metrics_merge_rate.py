"""The merge rate of a semantic prediction: objects it joins, and whether the data's touch."""

from __future__ import annotations

import numpy as np

from pixelseg.metrics.merge_rate import MergeRate, near_another
from pixelseg.report.tables import semantic_warnings, summary_lines


def _pairs(gap: int, pairs: int = 6) -> np.ndarray:
    """``pairs`` pairs of 6x6 squares of class 1, the two of a pair ``gap`` px apart."""
    truth = np.zeros((20 * pairs, 40), dtype=np.int64)
    for k in range(pairs):
        top = 20 * k + 4
        truth[top : top + 6, 4:10] = 1
        truth[top : top + 6, 10 + gap : 16 + gap] = 1
    return truth


def test_near_another_counts_objects_within_the_gap() -> None:
    labels = np.zeros((30, 30), dtype=np.int32)
    labels[2:6, 2:6] = 1
    labels[2:6, 8:12] = 2  # 2 px from object 1
    labels[20:25, 20:25] = 3  # far from both
    assert near_another(labels, gap=2) == 2
    assert near_another(labels, gap=1) == 0


def test_a_prediction_that_fills_the_gaps_merges_every_object() -> None:
    truth = _pairs(gap=1)
    joined = truth.copy()
    for k in range(6):
        joined[20 * k + 4 : 20 * k + 10, 10:11] = 1
    rate = MergeRate(["background", "cell"])
    rate.update(joined, truth)
    cell = rate.compute()["per_class"]["cell"]
    assert cell["objects"] == 12
    assert cell["merge_rate"] == 1.0 and cell["near_fraction"] == 1.0 and cell["touching"]
    assert "background" not in rate.compute()["per_class"]  # one blob per image: not objects
    exact = MergeRate(["background", "cell"])
    exact.update(truth, truth)
    assert exact.compute()["per_class"]["cell"]["merge_rate"] == 0.0


def test_ignored_pixels_hold_no_prediction() -> None:
    truth = _pairs(gap=1)
    joined = truth.copy()
    joined[:, 10:11] = 1
    truth_ignored = truth.copy()
    truth_ignored[:, 10:11] = 255  # the joining column is unlabelled
    rate = MergeRate(["background", "cell"], ignore_index=255)
    rate.update(joined, truth_ignored)
    assert rate.compute()["per_class"]["cell"]["merge_rate"] == 0.0


def _result(prediction: np.ndarray, truth: np.ndarray) -> dict:
    rate = MergeRate(["background", "cell"])
    rate.update(prediction, truth)
    return {"merge_rate": rate.compute()}


def test_the_advice_fires_on_touching_objects_and_not_on_separate_ones() -> None:
    touching = _pairs(gap=1)
    merged = touching.copy()
    merged[:, 10:11] = np.where(touching[:, 9:10] == 1, 1, 0)
    warnings = semantic_warnings(_result(merged, touching))  # type: ignore[arg-type]
    assert any("instance method" in w and "100.00 % of them" in w for w in warnings)
    lines = summary_lines(_result(merged, touching))  # type: ignore[arg-type]
    assert any(line.startswith("merge rate") and "cell 100.00 % of 12" in line for line in lines)
    apart = _pairs(gap=8)
    assert semantic_warnings(_result(apart, apart)) == []  # type: ignore[arg-type]
