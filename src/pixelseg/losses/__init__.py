"""Segmentation losses: a function and a module each, plus ``build_loss`` from the config."""

from pixelseg.data.loss_rule import choose_loss
from pixelseg.losses.combined import LOSS_NAMES, WeightedSumLoss, build_loss
from pixelseg.losses.cross_entropy import CrossEntropyLoss, cross_entropy_loss
from pixelseg.losses.dice import DiceLoss, dice_loss
from pixelseg.losses.focal import FocalLoss, focal_loss

__all__ = [
    "LOSS_NAMES",
    "CrossEntropyLoss",
    "DiceLoss",
    "FocalLoss",
    "WeightedSumLoss",
    "build_loss",
    "choose_loss",
    "cross_entropy_loss",
    "dice_loss",
    "focal_loss",
]
