"""Focal loss against hand-computed values and cross-entropy at gamma = 0."""

from __future__ import annotations

import math

import pytest
import torch

from pixelseg.losses import FocalLoss, cross_entropy_loss, focal_loss

IGNORE = 255


def _logits() -> tuple[torch.Tensor, torch.Tensor]:
    # Pixel 0: p_t = 3/4 (class 1); pixel 1: p_t = 1/2 (class 0); pixel 2 ignored.
    logits = torch.tensor([[[[0.0, 0.0, 5.0]], [[math.log(3), 0.0, -5.0]]]])
    return logits, torch.tensor([[[1, 0, IGNORE]]])


def test_value_by_hand() -> None:
    logits, target = _logits()
    terms = [(1 / 4) ** 2 * math.log(4 / 3), (1 / 2) ** 2 * math.log(2)]
    assert float(focal_loss(logits, target, gamma=2.0)) == pytest.approx(sum(terms) / 2)
    alpha = torch.tensor([1.0, 3.0])
    weighted = FocalLoss(gamma=2.0, class_weights=alpha)(logits, target)
    assert float(weighted) == pytest.approx((3 * terms[0] + terms[1]) / 4)


def test_gamma_zero_equals_weighted_cross_entropy() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 5, generator=g)
    target = torch.randint(0, 4, (2, 5, 5), generator=g)
    target[1, :2] = IGNORE
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    focal = focal_loss(logits, target, gamma=0.0, class_weights=weights)
    ce = cross_entropy_loss(logits, target, class_weights=weights)
    assert float(focal) == pytest.approx(float(ce), rel=1e-6)


def test_focusing_lowers_the_loss_of_easy_pixels() -> None:
    logits, target = _logits()
    assert float(focal_loss(logits, target, gamma=2.0)) < float(
        focal_loss(logits, target, gamma=0.0)
    )


def test_binary_one_channel_matches_binary_cross_entropy_at_gamma_zero() -> None:
    logits = torch.tensor([[[[0.3, -1.2, 2.0, 0.0]]]])
    target = torch.tensor([[[1, 0, 0, IGNORE]]])
    focal = focal_loss(logits, target, gamma=0.0)
    assert float(focal) == pytest.approx(float(cross_entropy_loss(logits, target)), rel=1e-6)


def test_all_ignored_and_bad_gamma() -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = focal_loss(logits, torch.full((1, 2, 2), IGNORE))
    loss.backward()
    assert float(loss.detach()) == 0.0
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)
