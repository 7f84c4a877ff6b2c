"""The benchmark-only split: a test split held back from both sides, as config overrides.

The shipped configs of ISBI 2012, DRIVE and CamVid use all their data for train / val, so their
val split is what pixelseg's defaults were chosen on. The time-to-quality rows therefore train
and evaluate under this split instead, applied by the bench as ``data.split`` overrides (the
configs themselves keep theirs):

=========  ===================  ===================  ========================
dataset    train                val                  test (nobody tunes on it)
=========  ===================  ===================  ========================
isbi2012   images 10–24 (15)    images 25–29 (5)     images 0–9 (10)
drive      images 26–35 (10)    images 36–40 (5)     images 21–25 (5)
camvid     0016E5 (204 frames)  0006R0 (101 frames)  0001TP (62 frames)
=========  ===================  ===================  ========================

CamVid is split by video sequence (neighbouring frames are near-identical). Both sides train on
the same train split; pixelseg may pick its best checkpoint on val, the plain peer ignores val;
both are scored on test by pixelseg's metrics. A dataset not listed here is evaluated on its
config's own ``test`` split.

The helpers below turn a (pixelseg) config's split into what the plain peer receives: plain
path triples and a small dict of how mask values become classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixelseg.config import Config
from pixelseg.data.classmap import ClassMap
from pixelseg.data.folder import find_samples
from pixelseg.data.splits import assign_splits

BENCH_SPLITS: dict[str, tuple[str, ...]] = {
    "isbi2012": (
        'data.split.method="range"',
        'data.split.train=["10-24"]',
        'data.split.val=["25-29"]',
        'data.split.test=["0-9"]',
    ),
    "drive": (
        'data.split.method="range"',
        'data.split.train=["26-35"]',
        'data.split.val=["36-40"]',
        'data.split.test=["21-25"]',
    ),
    "camvid": (
        'data.split.method="prefix"',
        'data.split.train=["0016E5_"]',
        'data.split.val=["0006R0_"]',
        'data.split.test=["0001TP_"]',
    ),
}

#: What the report says about each held-back split.
SPLIT_TEXT = {
    "isbi2012": "ISBI 2012: train images 10–24, val 25–29, test 0–9",
    "drive": "DRIVE: train 26–35, val 36–40, test 21–25 (inside the field of view)",
    "camvid": "CamVid: train sequence 0016E5, val 0006R0, test 0001TP",
}


def split_overrides(dataset: str) -> tuple[str, ...]:
    """The ``--set`` overrides that put ``dataset`` on its benchmark split (none if unlisted)."""
    return BENCH_SPLITS.get(dataset, ())


def split_members(config: Config) -> dict[str, list[str]]:
    """Sample ids of ``train``, ``val`` and ``test`` under ``config``'s ``[data.split]``."""
    ids = [s.id for s in find_samples(config.data)]
    return assign_splits(ids, config.data.split)


def plain_samples(config: Config, split: str) -> list[tuple[Path, Path, Path | None]]:
    """``(image, mask, valid mask or None)`` paths of ``split``, for the plain peer."""
    samples = {s.id: s for s in find_samples(config.data)}
    members = assign_splits(list(samples), config.data.split)[split]
    return [(samples[i].image, samples[i].mask, samples[i].valid) for i in members]


def plain_labels(config: Config) -> dict[str, Any]:
    """How stored mask values become classes, as the plain peer takes it.

    ``values`` maps each stored value of a class to its index (``mask_values`` or, for index and
    single-channel palette masks, the indices themselves); every other value (void values,
    ``ignore_index``) is ignored, as pixelseg's :class:`~pixelseg.data.classmap.ClassMap` does.
    RGB palette masks are not supported by the plain peer.
    """
    classmap = ClassMap.from_config(config.data)
    n = classmap.num_classes
    stored = classmap.mask_values if classmap.mode == "values" else tuple(range(n))
    return {
        "num_classes": n,
        "classes": list(classmap.classes),
        "values": {int(v): i for i, v in enumerate(stored)},
        "ignore_index": classmap.ignore_index,
    }
