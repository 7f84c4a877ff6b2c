"""Split assignment: ranges, lists, prefixes, the rest, stable hashes."""

from __future__ import annotations

import pytest

from pixelseg.config import SplitConfig
from pixelseg.data.splits import assign_splits, hash_fraction
from pixelseg.errors import ConfigError

IDS = [str(i) for i in range(30)]


def test_range_isbi() -> None:
    out = assign_splits(IDS, SplitConfig(method="range", train=("0-19",), val=("20-29",)))
    assert out["train"] == [str(i) for i in range(20)]
    assert out["val"] == [str(i) for i in range(20, 30)] and out["test"] == []


def test_range_with_suffix_ids_and_single_numbers() -> None:
    ids = ["21_training", "35_training", "36_training", "x"]
    out = assign_splits(ids, SplitConfig(method="range", train=("21-35",), val=("36", "40")))
    assert out == {"train": ids[:2], "val": ["36_training"], "test": []}


def test_prefix_with_rest() -> None:
    ids = ["0001TP_1", "0006R0_1", "0016E5_2", "0006R0_9"]
    out = assign_splits(ids, SplitConfig(method="prefix", train=("*",), val=("0006R0_",)))
    assert out["val"] == ["0006R0_1", "0006R0_9"] and out["train"] == ["0001TP_1", "0016E5_2"]


def test_list() -> None:
    out = assign_splits(IDS, SplitConfig(method="list", train=("1", "2"), test=("3",)))
    assert out == {"train": ["1", "2"], "val": [], "test": ["3"]}


def test_hash_is_stable_and_near_fractions() -> None:
    ids = [f"img_{i}" for i in range(2000)]
    split = SplitConfig(method="hash", fractions=(0.7, 0.2, 0.1))
    out = assign_splits(ids, split)
    assert sorted(i for members in out.values() for i in members) == sorted(ids)
    assert abs(len(out["train"]) / 2000 - 0.7) < 0.04
    assert abs(len(out["test"]) / 2000 - 0.1) < 0.03
    # adding samples never moves an existing one
    more = assign_splits([*ids, "new_1", "new_2"], split)
    assert set(out["val"]) <= set(more["val"])
    assert hash_fraction("abc") == hash_fraction("abc") and 0 <= hash_fraction("abc") < 1


def test_all() -> None:
    out = assign_splits(IDS[:3], SplitConfig(method="all"))
    assert out["train"] == out["val"] == IDS[:3]


def test_mistakes() -> None:
    with pytest.raises(ConfigError, match="in both train and val"):
        assign_splits(IDS, SplitConfig(method="range", train=("0-10",), val=("10-12",)))
    with pytest.raises(ConfigError, match="only one split may be"):
        assign_splits(IDS, SplitConfig(method="range", train=("*",), val=("*",)))
    with pytest.raises(ConfigError, match="not a range"):
        assign_splits(IDS, SplitConfig(method="range", train=("a-b",)))
