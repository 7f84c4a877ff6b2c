"""Cross-entropy against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pixelseg.data.class_weights import class_weights_from_counts
from pixelseg.losses import CrossEntropyLoss, cross_entropy_loss

IGNORE = 255


def _logits() -> tuple[torch.Tensor, torch.Tensor]:
    # Pixel 0: p(1) = 3/4, target 1; pixel 1: p = 1/2 each, target 0; pixel 2: ignored.
    logits = torch.tensor([[[[0.0, 0.0, 5.0]], [[math.log(3), 0.0, -5.0]]]])
    target = torch.tensor([[[1, 0, IGNORE]]])
    return logits, target


def test_unweighted_value_by_hand() -> None:
    logits, target = _logits()
    expected = (math.log(4 / 3) + math.log(2)) / 2
    assert float(cross_entropy_loss(logits, target, ignore_index=IGNORE)) == pytest.approx(expected)


def test_weighted_value_by_hand_and_matches_torch() -> None:
    logits, target = _logits()
    weights = torch.tensor([1.0, 3.0])
    expected = (3 * math.log(4 / 3) + 1 * math.log(2)) / 4
    loss = CrossEntropyLoss(class_weights=weights, ignore_index=IGNORE)(logits, target)
    assert float(loss) == pytest.approx(expected)
    reference = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE)
    assert float(loss) == pytest.approx(float(reference))


def test_all_ignored_gives_zero_with_gradient() -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = cross_entropy_loss(logits, torch.full((1, 2, 2), IGNORE), ignore_index=IGNORE)
    loss.backward()
    assert float(loss.detach()) == 0.0
    assert logits.grad is not None and float(logits.grad.abs().sum()) == 0.0


def test_binary_one_channel_by_hand() -> None:
    logits = torch.tensor([[[[0.0, math.log(3), 9.0]]]])
    target = torch.tensor([[[1, 0, IGNORE]]])
    expected = (math.log(2) + math.log(4)) / 2
    loss = cross_entropy_loss(logits, target, ignore_index=IGNORE)
    assert float(loss) == pytest.approx(expected)
    weighted = cross_entropy_loss(
        logits, target, class_weights=torch.tensor([1.0, 3.0]), ignore_index=IGNORE
    )
    assert float(weighted) == pytest.approx((3 * math.log(2) + math.log(4)) / 4)


def test_from_counts_uses_data_class_weights() -> None:
    counts = [1000, 100, 10]
    loss = CrossEntropyLoss.from_counts(counts, method="median", ignore_index=IGNORE)
    assert loss.class_weights is not None
    torch.testing.assert_close(loss.class_weights, class_weights_from_counts(counts))
    assert float(loss.class_weights[2]) > float(loss.class_weights[0])


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="differ"):
        cross_entropy_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 4, dtype=torch.long))
