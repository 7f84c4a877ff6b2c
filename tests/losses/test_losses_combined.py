"""build_loss from the config."""

from __future__ import annotations

import pytest
import torch

from pixelseg.config import LossConfig
from pixelseg.errors import ConfigError
from pixelseg.losses import (
    WeightedSumLoss,
    build_loss,
    cross_entropy_loss,
    dice_loss,
    focal_loss,
)

IGNORE = 255


def _batch(num_classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, num_classes, 4, 4, generator=g)
    target = torch.randint(0, max(num_classes, 2), (2, 4, 4), generator=g)
    target[0, 0] = IGNORE
    return logits, target


def test_dice_ce_is_the_weighted_sum() -> None:
    logits, target = _batch()
    weights = torch.tensor([0.5, 1.0, 2.0])
    cfg = LossConfig(name="dice_ce", ce_weight=0.7, dice_weight=2.0, smooth=0.5)
    loss = build_loss(cfg, num_classes=3, ignore_index=IGNORE, class_weights=weights)
    ce = cross_entropy_loss(logits, target, class_weights=weights, ignore_index=IGNORE)
    dice = dice_loss(logits, target, ignore_index=IGNORE, smooth=0.5)
    assert float(loss(logits, target)) == pytest.approx(float(0.7 * ce + 2.0 * dice))
    assert isinstance(loss, WeightedSumLoss)
    terms = loss.forward_terms(logits, target)
    assert set(terms) == {"loss", "ce", "dice"}


@pytest.mark.parametrize("name", ["ce", "dice", "focal", "dice_ce", "focal_dice"])
def test_every_name_builds_and_backpropagates(name: str) -> None:
    logits, target = _batch()
    logits.requires_grad_(True)
    loss = build_loss(LossConfig(name=name), num_classes=3, ignore_index=IGNORE, class_weights=None)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and logits.grad is not None
    assert isinstance(loss, WeightedSumLoss)
    assert set(loss.terms) == set(name.split("_"))


def test_focal_dice_value() -> None:
    logits, target = _batch()
    cfg = LossConfig(name="focal_dice", focal_weight=3.0, focal_gamma=1.0, dice_weight=0.5)
    loss = build_loss(cfg, num_classes=3, ignore_index=IGNORE, class_weights=None)
    expected = 3.0 * focal_loss(logits, target, gamma=1.0) + 0.5 * dice_loss(logits, target)
    assert float(loss(logits, target)) == pytest.approx(float(expected))


def test_binary_build_uses_sigmoid_dice() -> None:
    logits, target = _batch(num_classes=1)
    loss = build_loss(
        LossConfig(name="dice_ce"),
        num_classes=1,
        ignore_index=IGNORE,
        class_weights=torch.tensor([1.0, 5.0]),
    )
    expected = cross_entropy_loss(
        logits, target, class_weights=torch.tensor([1.0, 5.0])
    ) + dice_loss(logits, target, mode="binary")
    assert float(loss(logits, target)) == pytest.approx(float(expected))


def test_auto_unknown_and_wrong_weights_raise() -> None:
    with pytest.raises(ValueError, match="auto"):
        build_loss(LossConfig(), num_classes=3, ignore_index=IGNORE, class_weights=None)
    with pytest.raises(ConfigError, match=r"loss\.name"):
        build_loss(
            LossConfig(name="lovasz"), num_classes=3, ignore_index=IGNORE, class_weights=None
        )
    with pytest.raises(ConfigError, match="class weights"):
        build_loss(
            LossConfig(name="ce"),
            num_classes=3,
            ignore_index=IGNORE,
            class_weights=torch.ones(4),
        )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_loss_equals_cpu_loss() -> None:
    logits, target = _batch()
    weights = torch.tensor([0.5, 1.0, 2.0])
    loss = build_loss(
        LossConfig(name="focal_dice"), num_classes=3, ignore_index=IGNORE, class_weights=weights
    )
    on_cpu = loss(logits, target)
    on_gpu = loss.cuda()(logits.cuda(), target.cuda())
    assert float(on_gpu) == pytest.approx(float(on_cpu), rel=1e-5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert torch.isfinite(loss(logits.cuda(), target.cuda()))
