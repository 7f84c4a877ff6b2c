"""Soft Dice against hand-computed values, ignore_index, absent classes and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch

from pixelseg.losses import DiceLoss, dice_loss

IGNORE = 255


def _two_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    # Softmax of log-probabilities gives the probabilities back: [0.8, 0.2] and [0.4, 0.6].
    probs = torch.tensor([[0.8, 0.4], [0.2, 0.6]]).view(1, 2, 1, 2)
    return probs.log(), torch.tensor([[[0, 1]]])


def test_multiclass_value_by_hand() -> None:
    logits, target = _two_pixels()
    dice0 = 2 * 0.8 / (1.2 + 1)
    dice1 = 2 * 0.6 / (0.8 + 1)
    expected = ((1 - dice0) + (1 - dice1)) / 2
    assert float(dice_loss(logits, target, smooth=0.0)) == pytest.approx(expected)
    smoothed = ((1 - 2.6 / 3.2) + (1 - 2.2 / 2.8)) / 2
    assert float(DiceLoss(smooth=1.0)(logits, target)) == pytest.approx(smoothed)


def test_ignored_pixels_change_nothing() -> None:
    logits, target = _two_pixels()
    extra_logits = torch.cat([logits, torch.tensor([5.0, -5.0]).view(1, 2, 1, 1)], dim=3)
    extra_target = torch.tensor([[[0, 1, IGNORE]]])
    with_ignored = dice_loss(extra_logits, extra_target, ignore_index=IGNORE, smooth=0.0)
    assert float(with_ignored) == pytest.approx(float(dice_loss(logits, target, smooth=0.0)))


def test_absent_class_excluded_but_predicted_class_counts() -> None:
    logits, target = _two_pixels()
    absent = torch.full((1, 1, 1, 2), -1e4)
    three = torch.cat([logits, absent], dim=1)
    assert float(dice_loss(three, target, smooth=0.0)) == pytest.approx(
        float(dice_loss(logits, target, smooth=0.0)), abs=1e-6
    )
    # Class 2 predicted with probability 1/2 on both pixels but not in the truth: Dice 0.
    predicted = torch.cat([logits + math.log(0.5), torch.full((1, 1, 1, 2), math.log(0.5))], 1)
    loss = dice_loss(predicted, target, smooth=0.0)
    dice0 = 2 * 0.4 / (0.6 + 1)
    dice1 = 2 * 0.3 / (0.4 + 1)
    assert float(loss) == pytest.approx(((1 - dice0) + (1 - dice1) + 1) / 3)


def test_dice_is_per_class_over_the_batch() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    target = torch.randint(0, 3, (2, 4, 5), generator=g)
    side_by_side = dice_loss(
        torch.cat([logits[0:1], logits[1:2]], 3), torch.cat([*target], 1)[None]
    )
    assert float(dice_loss(logits, target)) == pytest.approx(float(side_by_side))


def test_all_ignored_gives_zero() -> None:
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = dice_loss(logits, torch.full((1, 2, 2), IGNORE), ignore_index=IGNORE)
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_binary_mode_by_hand() -> None:
    logits = torch.tensor([[[[0.0, math.log(3), 7.0]]]])
    target = torch.tensor([[[1, 0, IGNORE]]])
    expected = 1 - 2 * 0.5 / (1.25 + 1)
    loss = dice_loss(logits, target, mode="binary", smooth=0.0, ignore_index=IGNORE)
    assert float(loss) == pytest.approx(expected)
    background_only = dice_loss(
        torch.full((1, 1, 2, 2), -30.0), torch.zeros(1, 2, 2, dtype=torch.long), mode="binary"
    )
    assert float(background_only) == 0.0
    with pytest.raises(ValueError, match="1-channel"):
        dice_loss(torch.zeros(1, 2, 1, 1), torch.zeros(1, 1, 1, dtype=torch.long), mode="binary")


def test_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 3, (2, 3, 4), generator=g)
    target[0, 0, :2] = IGNORE
    assert torch.autograd.gradcheck(
        lambda x: dice_loss(x, target, ignore_index=IGNORE, smooth=1.0), (logits,)
    )
    binary = torch.randn(1, 1, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    binary_target = torch.randint(0, 2, (1, 3, 3), generator=g)
    assert torch.autograd.gradcheck(
        lambda x: dice_loss(x, binary_target, mode="binary", smooth=0.5), (binary,)
    )


def test_unknown_mode_raises() -> None:
    with pytest.raises(ValueError, match="mode"):
        DiceLoss(mode="multilabel")


def _one_hot_dice(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """The textbook multiclass soft Dice: one-hot truth, elementwise products (reference)."""
    valid = (target != IGNORE).unsqueeze(1).to(logits.dtype)
    labels = torch.where(target != IGNORE, target, torch.zeros_like(target))
    probs = logits.softmax(1) * valid
    truth = torch.nn.functional.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2) * valid
    inter, psum, tsum = ((probs * truth).sum((0, 2, 3)), probs.sum((0, 2, 3)), truth.sum((0, 2, 3)))
    present = ((tsum > 0) | (psum >= 1e-5)).to(logits.dtype)
    dice = (2 * inter + smooth) / (psum + tsum + smooth)
    return ((1 - dice) * present).sum() / present.sum().clamp_min(1.0)


def test_multiclass_matches_one_hot_reference_value_and_gradient() -> None:
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 6, 17, 13, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 5, (3, 17, 13), generator=g)  # class 5 absent from the truth
    target[1, :4] = IGNORE
    ours = dice_loss(logits, target, ignore_index=IGNORE)
    reference = _one_hot_dice(logits, target)
    (grad_ours,) = torch.autograd.grad(ours, logits)
    (grad_ref,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(grad_ours, grad_ref)


def test_multiclass_is_bitwise_repeatable() -> None:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 11, 64, 64, generator=g, requires_grad=True)
    target = torch.randint(0, 11, (2, 64, 64), generator=g)
    runs = []
    for _ in range(3):
        loss = dice_loss(logits, target)
        (grad,) = torch.autograd.grad(loss, logits)
        runs.append((loss.detach(), grad))
    for loss, grad in runs[1:]:
        assert torch.equal(loss, runs[0][0]) and torch.equal(grad, runs[0][1])
