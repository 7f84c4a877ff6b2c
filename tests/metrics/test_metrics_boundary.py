"""Boundary F1 on identical, slightly shifted and far shifted masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pixelseg.metrics import BoundaryF1, boundary_map

IGNORE = 255
SIZE = 200  # diagonal 282.8 px: tolerance 0.75 % = 2.12 px


def _square(offset: int = 0) -> torch.Tensor:
    mask = torch.zeros(1, SIZE, SIZE, dtype=torch.long)
    mask[0, 60 + offset : 140 + offset, 60:140] = 1
    return mask


def _score(preds: torch.Tensor, target: torch.Tensor) -> dict:
    metric = BoundaryF1(2, ignore_index=IGNORE, class_names=["bg", "fg"])
    metric.update(preds, target)
    return metric.compute()


def test_identical_masks_score_one() -> None:
    result = _score(_square(), _square())
    assert result["boundary_f1"] == 1.0
    assert result["per_class_boundary_f1"] == {"bg": 1.0, "fg": 1.0}


def test_shift_within_tolerance_scores_one() -> None:
    assert _score(_square(2), _square())["boundary_f1"] == 1.0


def test_shift_beyond_tolerance_drops() -> None:
    # Shifted 5 px down: only the two vertical sides (minus the shifted ends) still match.
    result = _score(_square(5), _square())
    assert 0.2 < result["boundary_f1"] < 0.8
    far = _score(_square(30), _square())
    assert far["boundary_f1"] < result["boundary_f1"]


def test_missing_object_scores_zero_and_absent_class_is_nan() -> None:
    target = _square()
    preds = torch.zeros_like(target)
    result = _score(preds, target)
    assert result["per_class_boundary_f1"]["fg"] == 0.0
    metric = BoundaryF1(3, ignore_index=IGNORE)
    metric.update(_square(), _square())
    per_class = metric.compute()["per_class_boundary_f1"]
    assert math.isnan(per_class["2"])
    assert metric.compute()["boundary_f1"] == 1.0


def test_ignored_region_makes_no_boundary() -> None:
    target = _square()
    target[0, :, 100:] = IGNORE  # the right half of the square is void
    preds = _square()
    preds[0, :, 100:] = 0  # wrong only where nothing counts
    assert _score(preds, target)["boundary_f1"] == 1.0
    edges = boundary_map(np.array([[0, 0, -1, 1]]))
    assert edges.tolist() == [[False, False, False, False]]


def test_scores_stream_and_merge() -> None:
    a = BoundaryF1(2, ignore_index=IGNORE)
    b = BoundaryF1(2, ignore_index=IGNORE)
    a.update(_square(), _square())
    b.update(torch.zeros(1, SIZE, SIZE, dtype=torch.long), _square())
    a.merge(b)
    assert a.compute()["per_class_boundary_f1"]["1"] == pytest.approx(0.5)
