"""The sample cache: never over its cap, cached samples equal decoded ones, workers share it."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import pixelseg.data.cache as cache_module
import pixelseg.data.folder as folder_module
from pixelseg.config import load_config
from pixelseg.data.build import build_datasets
from pixelseg.data.cache import SampleCache, available_memory
from pixelseg.data.compact import smallest_label_dtype
from pixelseg.data.folder import MaskFolderDataset, load_sample
from pixelseg.data.instance.build import build_instance_datasets
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.data.synthetic import write_synthetic_semantic


class Sized:
    """A cache value of a given size."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


def _counting_loads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    decoded: dict[str, int] = {}
    original: Callable[..., Any] = folder_module.load_sample

    def counting(paths: Any, *args: Any, **kwargs: Any) -> Any:
        decoded[paths.id] = decoded.get(paths.id, 0) + 1
        return original(paths, *args, **kwargs)

    monkeypatch.setattr(folder_module, "load_sample", counting)
    return decoded


def test_available_memory_and_fraction() -> None:
    assert available_memory() > 0
    assert SampleCache.from_fraction(0.0) is None
    cache = SampleCache.from_fraction(0.25, available=4000)
    assert cache is not None and cache.capacity == 1000


def test_tiny_cap_caches_some_and_decodes_the_rest_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_synthetic_semantic(tmp_path, n_images=6, size=32, seed=0))
    one = MaskFolderDataset(config.data)
    size = one.compact(0).nbytes
    cache = SampleCache(int(2.5 * size))  # room for two samples
    dataset = MaskFolderDataset(config.data, cache=cache)
    decoded = _counting_loads(monkeypatch)
    for _ in range(3):
        for index in range(len(dataset)):
            dataset[index]
            assert cache.nbytes <= cache.capacity
    assert len(cache) == 2 and cache.nbytes == 2 * size
    assert sorted(decoded.values()) == [1, 1, 3, 3, 3, 3]  # cached ones once, the rest each time


def test_build_cap_comes_from_the_available_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(
        write_synthetic_semantic(tmp_path, n_images=6, size=32, seed=0),
        ["data.cache_fraction=0.5"],
    )
    size = MaskFolderDataset(config.data).compact(0).nbytes
    monkeypatch.setattr(cache_module, "available_memory", lambda: 7 * size)  # cap 3.5 samples
    datasets = build_datasets(config, ("train", "val"))
    cache = datasets["train"].cache
    assert cache is not None and cache is datasets["val"].cache  # one cache per build
    assert len(cache) == 3 and cache.nbytes <= cache.capacity == int(3.5 * size)
    off = build_datasets(load_config(config.source, ["data.cache_fraction=0"]), ("train",))
    assert off["train"].cache is None


@pytest.mark.parametrize("variant", ["rgb", "multiband"])
def test_cached_sample_equals_a_freshly_decoded_one(tmp_path: Path, variant: str) -> None:
    config = load_config(
        write_synthetic_semantic(tmp_path, n_images=4, size=32, variant=variant, seed=1)
    )
    cached = build_datasets(config, ("train",))["train"]
    fresh = build_datasets(load_config(config.source, ["data.cache_fraction=0"]), ("train",))
    assert cached.cache is not None and len(cached.cache) == len(cached)
    for index in range(len(cached)):
        restored = cached.load(index)
        decoded = load_sample(cached.samples[index], cached.classmap, cached.data)
        assert restored.image.dtype == decoded.image.dtype
        np.testing.assert_array_equal(restored.image, decoded.image)
        assert restored.label.dtype == np.int64
        np.testing.assert_array_equal(restored.label, decoded.label)
        assert (restored.nodata is None) == (decoded.nodata is None or not decoded.nodata.any())
        torch.manual_seed(index)
        one = cached[index]
        torch.manual_seed(index)
        other = fresh["train"][index]
        assert torch.equal(one.image, other.image) and torch.equal(one.mask, other.mask)
    packed = cached.compact(0)
    assert packed.label.dtype == np.uint8 and packed.rows.shape == (32, 4)
    assert not packed.image.flags.writeable and not packed.label.flags.writeable
    before = packed.image.copy()
    cached[0].image.fill_(7.0)  # samples are copies: the cache (shared with workers) stays
    np.testing.assert_array_equal(cached.compact(0).image, before)


def test_cached_instances_equal_freshly_decoded_ones(tmp_path: Path) -> None:
    config = load_config(write_synthetic_instances(tmp_path, n_images=4, size=40, seed=2))
    train = build_instance_datasets(config, ("train",))["train"]
    assert train.cache is not None and len(train.cache) == len(train)
    for index in range(len(train)):
        restored, decoded = train.load(index), train.source.load(train.samples[index])
        assert train.compact(index).label_image.dtype == np.uint16
        np.testing.assert_array_equal(restored.image, decoded.image)
        np.testing.assert_array_equal(restored.label_image, decoded.label_image)
        assert restored.label_image.dtype == decoded.label_image.dtype
        np.testing.assert_array_equal(restored.ids, decoded.ids)
        np.testing.assert_array_equal(restored.labels, decoded.labels)


def test_label_dtypes() -> None:
    assert smallest_label_dtype(0, 255) == np.uint8
    assert smallest_label_dtype(0, 256) == np.uint16
    assert smallest_label_dtype(-1, 11) == np.int8
    assert smallest_label_dtype(-100, 40_000) == np.int32


def test_a_worker_adds_at_most_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SampleCache(100)
    assert cache.put("parent", Sized(40))
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: SimpleNamespace(num_workers=2))
    cache._pid = -1  # as in a forked worker process
    assert cache.room() == 30  # half of the 60 bytes left at fork time
    assert cache.put("a", Sized(25)) and not cache.put("b", Sized(10))
    assert cache.put("parent", Sized(40))  # already cached: nothing added
    assert cache.nbytes == 65 <= cache.capacity


def test_pickling_leaves_the_entries_out() -> None:
    cache = SampleCache(100)
    cache.put("x", Sized(40))
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.nbytes == 0 and copy.capacity == 100
    assert copy.put("y", Sized(90))


def test_dataloader_workers_read_the_cache_filled_before_the_fork(tmp_path: Path) -> None:
    config = load_config(write_synthetic_semantic(tmp_path, n_images=6, size=32, seed=3))
    val = build_datasets(config, ("train", "val"))["val"]  # evaluation: no randomness
    assert val.cache is not None and len(val.cache) == 6
    loader = DataLoader(val, batch_size=None, num_workers=2, multiprocessing_context="fork")
    from_workers = list(loader)
    for index, sample in enumerate(from_workers):
        assert torch.equal(sample.image, val[index].image)
