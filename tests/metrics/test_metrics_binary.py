"""Streaming binary AUC-ROC against torchmetrics' exact BinaryAUROC."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.classification import BinaryAUROC as ReferenceAUROC

from pixelseg.metrics import BinaryAUROC

IGNORE = 255


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = (torch.rand(2, 24, 24, generator=g) < 0.2).long()
    # Informative but noisy scores, so the AUC is neither 0.5 nor 1.
    probs = torch.sigmoid(torch.randn(2, 24, 24, generator=g) + 1.5 * target)
    return probs, target


def test_streamed_auc_matches_exact_auc() -> None:
    ours = BinaryAUROC(ignore_index=IGNORE)
    reference = ReferenceAUROC(thresholds=None)
    for seed in range(3):
        probs, target = _batch(seed)
        ours.update(probs.unsqueeze(1), target)
        reference.update(probs.flatten(), target.flatten())
    result = ours.compute()
    assert result["auc_roc"] == pytest.approx(float(reference.compute()), abs=1e-3)
    assert result["num_pixels"] == 3 * 2 * 24 * 24


def test_ignore_and_valid_are_respected() -> None:
    probs, target = _batch(0)
    valid = torch.ones_like(target, dtype=torch.bool)
    valid[:, :, :12] = False
    target = target.clone()
    target[:, :4] = IGNORE
    keep = valid & (target != IGNORE)
    ours = BinaryAUROC(ignore_index=IGNORE)
    ours.update(probs, target, valid=valid)
    reference = ReferenceAUROC(thresholds=None)
    expected = float(reference(probs[keep], target[keep]))
    assert ours.compute()["auc_roc"] == pytest.approx(expected, abs=1e-3)
    assert ours.compute()["num_pixels"] == int(keep.sum())


def test_perfect_and_inverted_scores_and_two_channel_input() -> None:
    target = torch.tensor([[[0, 0, 1, 1]]])
    probs = torch.tensor([[[0.1, 0.2, 0.8, 0.9]]])
    auc = BinaryAUROC()
    auc.update(torch.stack([1 - probs, probs], dim=1), target)
    assert auc.compute()["auc_roc"] == pytest.approx(1.0)
    auc.reset()
    auc.update(1 - probs, target)
    assert auc.compute()["auc_roc"] == pytest.approx(0.0)


def test_merge_and_single_class_gives_nan() -> None:
    a, b, whole = BinaryAUROC(), BinaryAUROC(), BinaryAUROC()
    for seed, part in ((0, a), (1, b)):
        probs, target = _batch(seed)
        part.update(probs, target)
        whole.update(probs, target)
    a.merge(b)
    assert a.compute() == whole.compute()
    only_negatives = BinaryAUROC()
    only_negatives.update(torch.rand(1, 3, 3), torch.zeros(1, 3, 3, dtype=torch.long))
    assert math.isnan(only_negatives.compute()["auc_roc"])
    with pytest.raises(ValueError, match="targets 0, 1"):
        only_negatives.update(torch.rand(1, 1, 2), torch.tensor([[[0, 2]]]))
