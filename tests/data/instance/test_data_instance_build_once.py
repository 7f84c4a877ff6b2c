"""The instance data path listed once: every file decoded once, the cache never decodes again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import pixelseg.data.instance.build as build_module
import pixelseg.data.instance.dataset as dataset_module
import pixelseg.data.instance.formats as formats_module
import pixelseg.data.io as io_module
import pixelseg.data.plan as plan_module
from pixelseg.config import Config, load_config
from pixelseg.data.instance.build import build_instance_datasets
from pixelseg.data.instance.check import check_instances, plan_instances
from pixelseg.data.instance.dataset import InstanceDataset
from pixelseg.data.instance.formats import InstanceSource
from pixelseg.data.instance.synthetic import write_synthetic_instances
from pixelseg.data.io import read_image
from pixelseg.data.normalize import choose_normalizer, image_to_float
from pixelseg.data.splits import assign_splits
from pixelseg.tasks.instance.anchors import object_areas, resolve_anchor_sizes

_SITES = (io_module, formats_module, dataset_module, build_module, plan_module)
_READERS = ("read_image", "read_mask")


class Calls:
    """Counts of reader calls by ``(reader, file path)``, and listings."""

    def __init__(self) -> None:
        self.files: Counter[tuple[str, str]] = Counter()
        self.listings = 0

    def of(self, reader: str) -> dict[str, int]:
        """Calls per file of one reader."""
        return {path: n for (kind, path), n in self.files.items() if kind == reader}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    """Count every image and mask decode and every listing of an instance source."""
    counted = Calls()

    def counting(reader: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            counted.files[(reader, str(path))] += 1
            return original(path, *args, **kwargs)

        return wrapper

    originals = {name: getattr(io_module, name) for name in _READERS}
    for module in _SITES:
        for name in _READERS:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting(name, originals[name]))
    find = InstanceSource._find

    def listing(self: InstanceSource) -> Any:
        counted.listings += 1
        return find(self)

    monkeypatch.setattr(InstanceSource, "_find", listing)
    yield counted


def _old_normalizer(config: Config) -> Any:
    """The normaliser as the build computed it before: every training image read again."""
    data = config.data
    everything = InstanceDataset(data)
    members = assign_splits([s.id for s in everything.samples], data.split)
    train = InstanceDataset(data, ids=members["train"])
    first = read_image(train.samples[0].image)
    images = ((image_to_float(read_image(s.image)), None) for s in train.samples)
    return choose_normalizer(
        data.normalize, bands=first.shape[2], dtype=str(first.dtype), train_images=images
    )


@pytest.mark.parametrize(
    ("layout", "overrides"),
    [("kaggle", ['data.normalize="dataset"']), ("label_images", ['data.normalize="dataset"'])],
)
def test_each_file_decoded_once_and_statistics_as_before(
    tmp_path: Path, calls: Calls, layout: str, overrides: list[str]
) -> None:
    config = load_config(
        write_synthetic_instances(tmp_path, n_images=5, size=48, layout=layout, seed=3), overrides
    )
    datasets = build_instance_datasets(config, ("train", "val"), verify=True)
    train = datasets["train"]
    assert train.in_channels == 3
    anchors = resolve_anchor_sizes(None, train)  # the areas the check measured: nothing read
    assert calls.listings == 1
    images = calls.of("read_image")
    assert len(images) == 5 and set(images.values()) == {1}, images
    masks = calls.of("read_mask")
    assert masks and set(masks.values()) == {1}, masks
    for dataset in datasets.values():  # training and validation read the cache, not the files
        for index in range(len(dataset)):
            dataset[index]
    assert calls.of("read_image") == images and calls.of("read_mask") == masks
    assert train.crop_sampling is not None and "objects cover" in train.crop_sampling["reason"]

    normalizer = _old_normalizer(config)
    np.testing.assert_allclose(train.normalizer.mean, normalizer.mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(train.normalizer.std, normalizer.std, rtol=1e-6, atol=1e-9)
    fresh = InstanceDataset(config.data, ids=[s.id for s in train.samples])
    assert fresh.object_areas is None
    np.testing.assert_array_equal(object_areas(train), object_areas(fresh))
    assert anchors == resolve_anchor_sizes(None, fresh)


def test_without_verify_listed_once(tmp_path: Path, calls: Calls) -> None:
    config = load_config(
        write_synthetic_instances(tmp_path, n_images=4, size=40, seed=1),
        ["train.foreground_crops=0.5"],  # an explicit share: no pixel counts needed
    )
    datasets = build_instance_datasets(config, ("train", "val"), verify=False)
    assert calls.listings == 1
    assert len(calls.of("read_image")) == 1 and calls.of("read_mask") == {}
    assert datasets["train"].object_areas is None and datasets["train"].in_channels == 3
    assert datasets["train"].crop_sampling["foreground_share"] == 0.5  # type: ignore[index]


def test_without_verify_auto_crops_read_the_train_split_once(tmp_path: Path, calls: Calls) -> None:
    config = load_config(write_synthetic_instances(tmp_path, n_images=4, size=40, seed=1))
    train = build_instance_datasets(config, ("train", "val"), verify=False)["train"]
    images = calls.of("read_image")
    assert len(images) == len(train) and sum(images.values()) == len(train) + 1  # + the header
    for index in range(len(train)):
        train[index]
    assert calls.of("read_image") == images
    verified = build_instance_datasets(config, ("train",), verify=True)["train"]
    assert train.crop_sampling == verified.crop_sampling


def test_plan_report_is_the_check_report(tmp_path: Path) -> None:
    config = load_config(write_synthetic_instances(tmp_path, n_images=4, size=40, seed=2))
    report, plan = plan_instances(config)
    assert report.to_dict() == check_instances(config).to_dict()
    assert plan.complete and plan.source is not None and (plan.bands, plan.dtype) == (3, "uint8")
    assert plan.band_stats is None  # 8-bit RGB, data.normalize auto: ImageNet statistics
    assert sorted(plan.object_areas) == plan.members["train"] == ["000", "001", "002"]
    assert sum(len(a) for a in plan.object_areas.values()) <= report.objects
