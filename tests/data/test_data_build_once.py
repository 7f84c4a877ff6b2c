"""The semantic data path listed once: every file decoded once, the cache never decodes again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import pixelseg.data.build as build_module
import pixelseg.data.check as check_module
import pixelseg.data.folder as folder_module
import pixelseg.data.io as io_module
import pixelseg.data.loading as loading_module
import pixelseg.data.plan as plan_module
from pixelseg.config import Config, load_config
from pixelseg.data.build import build_datasets, class_pixel_counts
from pixelseg.data.check import check_dataset, plan_dataset
from pixelseg.data.folder import MaskFolderDataset, find_samples
from pixelseg.data.normalize import choose_normalizer, image_to_float
from pixelseg.data.splits import assign_splits
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.errors import ConfigError

#: Every module that imports a reader or the listing, so a call from any of them is counted.
_SITES = (io_module, loading_module, folder_module, plan_module, build_module, check_module)
_READERS = ("read_image", "read_mask", "read_valid_mask", "find_samples")


class Calls:
    """Counts of reader calls by ``(reader, file name)``, and listings."""

    def __init__(self) -> None:
        self.files: Counter[tuple[str, str]] = Counter()
        self.listings = 0

    def of(self, reader: str) -> dict[str, int]:
        """Calls per file name of one reader."""
        return {name: n for (kind, name), n in self.files.items() if kind == reader}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """Count every image, mask and valid-mask decode and every sample listing."""
    counted = Calls()

    def counting(reader: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if reader == "find_samples":
                counted.listings += 1
            else:
                counted.files[(reader, Path(args[0]).name)] += 1
            return original(*args, **kwargs)

        return wrapper

    originals = {
        name: getattr(folder_module if name == "find_samples" else io_module, name)
        for name in _READERS
    }
    for module in _SITES:
        for name in _READERS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting(name, originals[name]))
    yield counted


def _old_path(config: Config) -> tuple[Any, dict[str, np.ndarray]]:
    """The normaliser and class counts as the build computed them before (decoding again)."""
    data = config.data
    samples = find_samples(data)
    members = assign_splits([s.id for s in samples], data.split)
    train = MaskFolderDataset(data, ids=members["train"])
    first = train.load(0).image

    def images() -> Iterator[tuple[Any, np.ndarray | None]]:
        for index in range(len(train)):
            loaded = train.load(index)
            yield image_to_float(loaded.image), None if loaded.nodata is None else ~loaded.nodata

    normalizer = choose_normalizer(
        data.normalize, bands=first.shape[2], dtype=str(first.dtype), train_images=images()
    )
    counts = {
        name: class_pixel_counts(MaskFolderDataset(data, ids=ids))
        for name, ids in members.items()
        if ids
    }
    return normalizer, counts


@pytest.mark.parametrize(
    ("variant", "overrides"),
    [("multiband", []), ("rgb", ['data.normalize="dataset"']), ("rgb", [])],
    ids=["multiband-nodata", "rgb-dataset-stats", "rgb-imagenet"],
)
def test_each_file_decoded_once_and_statistics_as_before(
    tmp_path: Path, calls: Calls, variant: str, overrides: list[str]
) -> None:
    config = load_config(
        write_synthetic_semantic(tmp_path, n_images=6, size=32, variant=variant, seed=2),
        overrides,
    )
    datasets = build_datasets(config, ("train", "val"), verify=True)
    train, val = datasets["train"], datasets["val"]
    assert train.in_channels == (6 if variant == "multiband" else 3)
    assert calls.listings == 1
    images = calls.of("read_image")
    assert len(images) == 6 and set(images.values()) == {1}, images
    masks = calls.of("read_mask")
    assert len(masks) == 6 and set(masks.values()) == {1}, masks
    for index in range(len(train)):  # training and validation read the cache, not the files
        train[index]
    for index in range(len(val)):
        val[index]
    assert set(calls.of("read_image").values()) == {1}
    assert set(calls.of("read_mask").values()) == {1}

    normalizer, counts = _old_path(config)
    assert train.normalizer is val.normalizer
    np.testing.assert_allclose(train.normalizer.mean, normalizer.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(train.normalizer.std, normalizer.std, rtol=1e-6, atol=1e-9)
    assert train.class_counts is not None and val.class_counts is not None
    np.testing.assert_array_equal(train.class_counts, counts["train"])
    np.testing.assert_array_equal(val.class_counts, counts["val"])
    np.testing.assert_array_equal(train.class_counts, class_pixel_counts(config))


def test_without_verify_listed_once_and_nothing_counted(tmp_path: Path, calls: Calls) -> None:
    config = load_config(
        write_synthetic_semantic(tmp_path, n_images=4, size=32, seed=1),
        ["train.foreground_crops=0"],  # uniform crops: no class counts needed
    )
    datasets = build_datasets(config, ("train", "val"), verify=False)
    assert calls.listings == 1
    assert calls.of("read_image") == {"000.png": 1}  # the band count and dtype, from one image
    assert calls.of("read_mask") == {}
    assert datasets["train"].class_counts is None and datasets["train"].in_channels == 3
    assert datasets["train"].normalizer == _old_path(config)[0]


def test_without_verify_auto_crops_count_the_train_split_once(tmp_path: Path, calls: Calls) -> None:
    config = load_config(write_synthetic_semantic(tmp_path, n_images=4, size=32, seed=1))
    train = build_datasets(config, ("train", "val"), verify=False)["train"]
    masks = calls.of("read_mask")
    assert len(masks) == len(train) and set(masks.values()) == {1}  # counted into the cache
    assert train.crop_sampling is not None and train.crop_sampling["classes"] == ["building"]
    for index in range(len(train)):
        train[index]
    assert calls.of("read_mask") == masks


def test_plan_report_is_the_check_report(tmp_path: Path) -> None:
    config = load_config(
        write_synthetic_semantic(tmp_path, n_images=4, size=32, variant="multiband", seed=3)
    )
    report, plan = plan_dataset(config)
    assert report.to_dict() == check_dataset(config).to_dict()
    assert plan.complete and (plan.bands, plan.dtype) == (6, "uint16")
    assert plan.members == {"train": ["000", "001", "002"], "val": ["003"], "test": []}
    assert plan.class_counts["train"].tolist() == report.train_class_pixels
    assert plan.band_stats is not None and plan.band_stats.count > 0


def test_mixed_band_counts_still_refused_by_the_normaliser(tmp_path: Path) -> None:
    config = load_config(
        write_synthetic_semantic(tmp_path, n_images=4, size=32, seed=4),
        ['data.normalize="dataset"'],
    )
    grey = np.asarray(Image.open(tmp_path / "images/001.png").convert("L"))
    Image.fromarray(grey).save(tmp_path / "images/001.png")
    _, plan = plan_dataset(config)
    assert plan.band_stats is None  # the pass gave up; the build reads again and says why
    with pytest.raises(ConfigError, match="different band counts"):
        build_datasets(config)
