"""``bench/splits.py``: the benchmark-only split holds a test split back from both sides.

Train, val and test must be disjoint and cover each shared dataset, with the sizes the report
states, and the shipped configs must keep their own splits (no test split there).
"""

from __future__ import annotations

import sys

import pytest

from conftest import CONFIGS, REPO, shared_dataset
from pixelseg.config import load_config
from pixelseg.data.folder import find_samples

sys.path.insert(0, str(REPO / "bench"))
try:
    import splits
finally:
    sys.path.remove(str(REPO / "bench"))

FOLDERS = {"isbi2012": "isbi2012-membrane", "drive": "drive", "camvid": "camvid"}
SIZES = {
    "isbi2012": {"train": 15, "val": 5, "test": 10},
    "drive": {"train": 10, "val": 5, "test": 5},
    "camvid": {"train": 204, "val": 101, "test": 62},
}


@pytest.mark.parametrize("dataset", sorted(SIZES))
def test_benchmark_split_is_disjoint_covers_the_data_and_leaves_the_config(dataset: str) -> None:
    shared_dataset(FOLDERS[dataset])
    shipped = load_config(CONFIGS / f"{dataset}.toml")
    bench = load_config(CONFIGS / f"{dataset}.toml", list(splits.split_overrides(dataset)))

    members = splits.split_members(bench)
    every = [s.id for s in find_samples(bench.data)]

    assert {k: len(v) for k, v in members.items()} == SIZES[dataset]
    train, val, test = (set(members[k]) for k in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(every)
    # The shipped config still trains on everything that is not its val split: no test split.
    shipped_members = splits.split_members(shipped)
    assert shipped_members["test"] == []
    assert len(shipped_members["train"]) + len(shipped_members["val"]) == len(every)
    if dataset == "camvid":
        assert {i[:6] for i in test} == {"0001TP"} and {i[:6] for i in val} == {"0006R0"}
    if dataset == "isbi2012":
        assert test == {str(i) for i in range(10)}
    if dataset == "drive":
        assert test == {str(i) for i in range(21, 26)}


def test_only_the_three_semantic_datasets_get_a_benchmark_split() -> None:
    assert set(splits.BENCH_SPLITS) == {"isbi2012", "drive", "camvid"}
    assert splits.split_overrides("dsb2018") == ()
    for dataset, overrides in splits.BENCH_SPLITS.items():
        assert any(o.startswith("data.split.test=") for o in overrides), dataset
        assert dataset in splits.SPLIT_TEXT
