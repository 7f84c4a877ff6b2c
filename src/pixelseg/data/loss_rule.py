"""What ``loss.name = "auto"`` means: one rule, used by training and printed by ``pixelseg check``.

The rule is what the repository's loss ablation measured (``docs/loss_rule.md``,
``bench/loss_ablation.sh``): fixed work (300 steps of 4 crops, U-Net ResNet-18), the benchmark
split's train images, scored on its val images, one seed:

============  ======  ========  ===================
dataset       CE      Dice+CE   Dice+median-wt. CE
============  ======  ========  ===================
DRIVE         0.738   0.757     0.736
ISBI 2012     0.765   0.770     0.751
CamVid        0.221   0.220     0.239
============  ======  ========  ===================

Dice + cross-entropy was at or above plain cross-entropy everywhere; median-frequency class
weights helped only where a class is under 1 % of the pixels (CamVid: Bicyclist 0.34 %,
Pedestrian 0.81 %, SignSymbol 0.95 %) and cost 0.02 mIoU where none is (DRIVE, ISBI). Pure Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: A class under this fraction of the labelled pixels is rare: its pixels get class weights.
RARE_FRACTION = 0.01


def rare_classes(fractions: Sequence[float], names: Sequence[str]) -> list[str]:
    """The names of the classes under :data:`RARE_FRACTION` of the pixels (absent ones included)."""
    return [name for name, fraction in zip(names, fractions) if fraction < RARE_FRACTION]


def choose_loss(
    class_frequencies: Any, *, class_names: Sequence[str] | None = None
) -> tuple[str, str, str]:
    """Resolve ``loss.name = "auto"`` from the training split's pixels per class.

    Always Dice + cross-entropy; the cross-entropy is weighted by median-frequency balancing when
    a class is under 1 % of the labelled pixels, and unweighted otherwise (see the module
    docstring for the measurements behind it).

    Args:
        class_frequencies: ``(C,)`` pixel counts or fractions per class (a sequence, a numpy array
            or a tensor), ignored pixels left out.
        class_names: Names used in the reason (default: class indices).

    Returns:
        ``(loss name, class weighting, reason)``: ``("dice_ce", "median", ...)`` or
        ``("dice_ce", "none", ...)``; the reason is one sentence for the log and the check.

    Raises:
        ValueError: a negative count, no pixels at all, or names that do not match the counts.
    """
    values = (
        class_frequencies.tolist() if hasattr(class_frequencies, "tolist") else class_frequencies
    )
    counts = [float(v) for v in _flatten(values)]
    if not counts or min(counts) < 0 or sum(counts) <= 0:
        raise ValueError("class frequencies must be non-negative with a positive sum")
    names = [str(i) for i in range(len(counts))] if class_names is None else list(class_names)
    if len(names) != len(counts):
        raise ValueError(f"{len(names)} class names for {len(counts)} frequencies")
    total = sum(counts)
    fractions = [c / total for c in counts]
    rare = rare_classes(fractions, names)
    if rare:
        listed = ", ".join(
            f"{name!r} {100 * f:.2f} %" for name, f in zip(names, fractions) if name in rare
        )
        reason = (
            f"{listed} of the pixels (under {100 * RARE_FRACTION:g} %): Dice + cross-entropy "
            "with median-frequency class weights"
        )
        return "dice_ce", "median", reason
    smallest = min(range(len(counts)), key=fractions.__getitem__)
    reason = (
        f"no class under {100 * RARE_FRACTION:g} % of the pixels (smallest {names[smallest]!r} "
        f"{100 * fractions[smallest]:.2f} %): Dice + unweighted cross-entropy"
    )
    return "dice_ce", "none", reason


def _flatten(values: Any) -> list[Any]:
    """Nested lists (a tensor's ``tolist``) as one flat list."""
    if isinstance(values, list | tuple):
        return [leaf for value in values for leaf in _flatten(value)]
    return [values]
