"""The loss rule behind ``loss.name = "auto"``: Dice + CE, class weights only for rare classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelseg.config import LossConfig
from pixelseg.data.class_weights import class_weights_from_counts
from pixelseg.losses import build_loss, choose_loss


def test_no_rare_class_gives_dice_and_unweighted_ce() -> None:
    # DRIVE-like: vessels 12 % of the pixels (the ablation: Dice + CE 0.757 > CE 0.738 > weighted).
    name, weighting, reason = choose_loss([880, 120], class_names=["background", "vessel"])
    assert (name, weighting) == ("dice_ce", "none")
    assert "'vessel' 12.00 %" in reason and "unweighted" in reason


def test_a_class_under_one_percent_gives_median_weights_naming_it() -> None:
    counts = torch.tensor([990, 9, 1000])
    name, weighting, reason = choose_loss(counts, class_names=["bg", "bike", "sky"])
    assert (name, weighting) == ("dice_ce", "median")
    assert "'bike' 0.45 %" in reason and "'sky'" not in reason
    weights = class_weights_from_counts(counts, method=weighting)
    loss = build_loss(LossConfig(name=name), num_classes=3, ignore_index=255, class_weights=weights)
    logits, target = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    assert torch.isfinite(loss(logits, target))


def test_ratio_alone_is_no_reason_for_weights() -> None:
    # 3.6 % smallest, ratio 13: the old rule weighted it; the ablation says weights cost here.
    assert choose_loss([200.0, 15.0, 200.0])[1] == "none"
    assert choose_loss(np.array([0, 5, 5]))[1] == "median"  # an absent class is the extreme case


@pytest.mark.parametrize("bad", [[0, 0], [-1, 3], []])
def test_no_pixels_or_negative_counts_are_refused(bad: list[int]) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        choose_loss(bad)


def test_names_must_match_the_counts() -> None:
    with pytest.raises(ValueError, match="2 class names for 3"):
        choose_loss([1, 2, 3], class_names=["a", "b"])
