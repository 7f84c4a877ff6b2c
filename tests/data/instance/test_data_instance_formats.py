"""Instance readers: Kaggle layout, instance label images, COCO JSON, and each broken input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image
from pycocotools import mask as mask_utils

from pixelseg.config import DataConfig
from pixelseg.data.instance.coco import rle_string_counts
from pixelseg.data.instance.formats import InstanceSource
from pixelseg.errors import ConfigError, DataError

RNG = np.random.default_rng(3)


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _objects() -> np.ndarray:
    """A 12x16 label image with three objects, two of them touching."""
    label = np.zeros((12, 16), np.int32)
    label[1:5, 1:6] = 1
    label[1:5, 6:9] = 2
    label[7:11, 10:15] = 3
    return label


def _kaggle(root: Path, label: np.ndarray, *, rgba: bool = True) -> DataConfig:
    image = RNG.integers(0, 255, (*label.shape, 4 if rgba else 3), np.uint8)
    _save(root / "s1/images/s1.png", image)
    for k in range(1, int(label.max()) + 1):
        _save(root / f"s1/masks/m{k}.png", np.where(label == k, 255, 0).astype(np.uint8))
    return DataConfig(
        format="kaggle_instances",
        root=str(root),
        images="*/images/*.png",
        masks="{stem}/masks/*.png",
    )


def test_kaggle_layout_drops_alpha_and_reads_one_mask_per_file(tmp_path: Path) -> None:
    label = _objects()
    source = InstanceSource(_kaggle(tmp_path, label))
    assert [s.id for s in source.samples] == ["s1"]
    loaded = source.load(source.samples[0])
    assert loaded.image.shape == (12, 16, 3)
    assert loaded.ids.tolist() == [1, 2, 3]
    assert loaded.labels.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(loaded.label_image, label)
    assert loaded.masks().shape == (3, 12, 16) and loaded.masks().dtype == bool
    assert source.classes == ("object",)


def test_kaggle_overlap_names_the_pair_and_file(tmp_path: Path) -> None:
    data = _kaggle(tmp_path, _objects())
    big = np.zeros((12, 16), np.uint8)
    big[1:5, 3:8] = 255  # covers half of m1 and of m2
    _save(tmp_path / "s1/masks/m4.png", big)
    source = InstanceSource(data)
    with pytest.raises(DataError) as info:
        source.load(source.samples[0])
    message = str(info.value)
    assert message.startswith(str(tmp_path / "s1/masks") + ": overlapping objects in image s1.png")
    assert "m1.png and m4.png (12 px" in message and "m2.png and m4.png (8 px" in message
    assert "\n" not in message


def test_kaggle_tiny_overlap_is_resolved_to_the_first_object(tmp_path: Path) -> None:
    label = np.zeros((40, 40), np.int32)
    label[0:20, 0:20] = 1
    label[0:20, 20:40] = 2
    data = _kaggle(tmp_path, label)
    widened = np.where(label == 2, 255, 0).astype(np.uint8)
    widened[0, 19] = 255  # one pixel of object 1 (400 px): 0.25 %
    _save(tmp_path / "s1/masks/m2.png", widened)
    loaded = InstanceSource(data).load(InstanceSource(data).samples[0])
    np.testing.assert_array_equal(loaded.label_image, label)
    assert "m1.png and m2.png (1 px, 0.2 % of the smaller)" in loaded.resolved


def test_kaggle_wrong_size_and_empty_masks(tmp_path: Path) -> None:
    data = _kaggle(tmp_path, _objects())
    _save(tmp_path / "s1/masks/m0.png", np.zeros((12, 16), np.uint8))
    source = InstanceSource(data)
    loaded = source.load(source.samples[0])
    assert loaded.empty == ["m0.png"] and loaded.ids.tolist() == [2, 3, 4]
    _save(tmp_path / "s1/masks/m9.png", np.zeros((12, 15), np.uint8))
    with pytest.raises(DataError) as info:
        source.load(InstanceSource(data).samples[0])
    assert str(info.value) == (
        f"{tmp_path / 's1/masks/m9.png'}: mask is 15x12 but image s1.png is 16x12 (WxH)"
    )


def test_kaggle_image_without_masks_is_an_empty_sample(tmp_path: Path) -> None:
    _save(tmp_path / "e/images/e.png", np.zeros((8, 8, 3), np.uint8))
    data = DataConfig(
        format="kaggle_instances",
        root=str(tmp_path),
        images="*/images/*.png",
        masks="{stem}/masks/*.png",
    )
    loaded = InstanceSource(data).load(InstanceSource(data).samples[0])
    assert loaded.ids.shape == (0,) and not loaded.label_image.any()


def _labels_config(root: Path, suffix: str = "png", **extra: Any) -> DataConfig:
    return DataConfig(
        format="instance_labels",
        root=str(root),
        images="images/*.png",
        masks=f"labels/{{stem}}.{suffix}",
        **extra,
    )


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_label_images_16_bit_png_and_tiff(tmp_path: Path, suffix: str) -> None:
    label = _objects().astype(np.uint16) * 1000  # ids need not be consecutive
    _save(tmp_path / "images/a.png", RNG.integers(0, 255, (12, 16, 3), np.uint8))
    (tmp_path / "labels").mkdir()
    if suffix == "png":
        Image.fromarray(label).save(tmp_path / "labels/a.png")
    else:
        tifffile.imwrite(tmp_path / "labels/a.tif", label)
    source = InstanceSource(_labels_config(tmp_path, suffix))
    loaded = source.load(source.samples[0])
    assert loaded.ids.tolist() == [1000, 2000, 3000]
    np.testing.assert_array_equal(loaded.label_image, _objects())


def test_label_image_in_float_and_wrong_size_are_refused(tmp_path: Path) -> None:
    _save(tmp_path / "images/a.png", np.zeros((12, 16, 3), np.uint8))
    (tmp_path / "labels").mkdir()
    tifffile.imwrite(tmp_path / "labels/a.tif", _objects().astype(np.float32))
    source = InstanceSource(_labels_config(tmp_path, "tif"))
    with pytest.raises(DataError) as info:
        source.load(source.samples[0])
    assert str(info.value) == (
        f"{tmp_path / 'labels/a.tif'}: instance label image is float32; object ids must be "
        "integers (16-bit PNG or integer TIFF)"
    )
    tifffile.imwrite(tmp_path / "labels/a.tif", np.zeros((12, 10), np.uint16))
    with pytest.raises(DataError, match=r"label image is 10x12 but image a\.png is 16x12"):
        source.load(source.samples[0])


def test_object_classes_json_maps_objects_to_classes(tmp_path: Path) -> None:
    _save(tmp_path / "images/a.png", np.zeros((12, 16, 3), np.uint8))
    Image.fromarray(_objects().astype(np.uint16)).save(_mkdir(tmp_path / "labels") / "a.png")
    classes = {"1": "round", "2": "long", "3": "round"}
    (tmp_path / "labels/a.json").write_text(json.dumps(classes))
    data = _labels_config(tmp_path, classes=("round", "long"), object_classes="labels/{stem}.json")
    loaded = InstanceSource(data).load(InstanceSource(data).samples[0])
    assert loaded.labels.tolist() == [1, 2, 1]
    (tmp_path / "labels/a.json").write_text(json.dumps({**classes, "3": "square"}))
    with pytest.raises(DataError, match=r"a\.json: object 3 has class 'square', not one of"):
        InstanceSource(data).load(InstanceSource(data).samples[0])
    with pytest.raises(ConfigError, match=r"set data\.object_classes"):
        source = InstanceSource(_labels_config(tmp_path, classes=("round", "long")))
        source.load(source.samples[0])


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def _coco(root: Path, **changes: Any) -> DataConfig:
    label = _objects()
    _save(root / "img/a.png", RNG.integers(0, 255, (12, 16, 3), np.uint8))
    crowd = np.zeros((12, 16), np.uint8)
    crowd[9:12, 0:4] = 1
    raw: dict[str, Any] = {
        "images": [{"id": 7, "file_name": "img/a.png", "height": 12, "width": 16}],
        "annotations": [
            {
                "id": 11,
                "image_id": 7,
                "category_id": 3,
                "iscrowd": 0,
                "segmentation": [[1, 1, 6, 1, 6, 5, 1, 5]],
            },
            {
                "id": 12,
                "image_id": 7,
                "category_id": 5,
                "iscrowd": 0,
                "segmentation": _rle(label == 2),
            },
            {
                "id": 13,
                "image_id": 7,
                "category_id": 3,
                "iscrowd": 0,
                "segmentation": {"size": [12, 16], "counts": _uncompressed(label == 3)},
            },
            {
                "id": 14,
                "image_id": 7,
                "category_id": 5,
                "iscrowd": 1,
                "segmentation": _rle(crowd > 0),
            },
        ],
        "categories": [{"id": 3, "name": "cell"}, {"id": 5, "name": "debris"}],
    }
    for key, value in changes.items():
        raw[key] = value
    (root / "ann.json").write_text(json.dumps(raw))
    return DataConfig(format="coco", root=str(root), annotations="ann.json")


def _uncompressed(mask: np.ndarray) -> list[int]:
    flat = mask.astype(np.uint8).flatten(order="F")
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], changes])).tolist()


def test_coco_polygons_rle_categories_and_crowd(tmp_path: Path) -> None:
    source = InstanceSource(_coco(tmp_path))
    assert source.classes == ("cell", "debris")
    assert [s.id for s in source.samples] == ["a"]
    loaded = source.load(source.samples[0])
    assert loaded.ids.tolist() == [11, 12, 13]
    assert loaded.labels.tolist() == [1, 2, 1]
    masks = loaded.masks()
    np.testing.assert_array_equal(masks[1], _objects() == 2)
    np.testing.assert_array_equal(masks[2], _objects() == 3)
    # the polygon (1,1)-(6,5) in pixel-edge coordinates covers columns 1-5, rows 1-4
    assert masks[0][1:5, 1:6].all() and masks[0].sum() == 20
    assert loaded.ignore is not None and loaded.ignore.sum() == 12


def test_coco_classes_from_config_order(tmp_path: Path) -> None:
    data = _coco(tmp_path)
    source = InstanceSource(DataConfig(**{**data.__dict__, "classes": ("debris", "cell")}))
    assert source.load(source.samples[0]).labels.tolist() == [2, 1, 2]


def _first_ann(**changes: Any) -> list[dict[str, Any]]:
    ann = {"id": 1, "image_id": 7, "category_id": 3, "segmentation": [[1, 1, 6, 1, 6, 5]]}
    return [{**ann, **changes}]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"annotations": _first_ann(segmentation=[[1, 1, 6, 1]])},
            "annotation 1 (image img/a.png): polygon with 2 points; at least 3 are needed",
        ),
        (
            {"annotations": _first_ann(category_id=9)},
            "annotation 1 (image img/a.png): category_id 9 is not in 'categories'",
        ),
        (
            {"annotations": _first_ann(image_id=8)},
            "annotation 1: image_id 8 not in images",
        ),
        (
            {"images": [{"id": 7, "file_name": "../outside.png"}]},
            "image 7: file_name '../outside.png' points outside the dataset root",
        ),
        ({"categories": None}, "COCO JSON has no 'categories' list"),
    ],
)
def test_coco_index_errors(tmp_path: Path, changes: dict[str, Any], problem: str) -> None:
    data = _coco(tmp_path, **changes)
    with pytest.raises(DataError) as info:
        InstanceSource(data)
    assert str(info.value).startswith(f"{tmp_path / 'ann.json'}: {problem}")


def test_coco_malformed_and_truncated_json(tmp_path: Path) -> None:
    data = _coco(tmp_path)
    text = (tmp_path / "ann.json").read_text()
    (tmp_path / "ann.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError) as info:
        InstanceSource(data)
    assert str(info.value).startswith(
        f"{tmp_path / 'ann.json'}: malformed or truncated COCO JSON: "
    )
    assert "(line 1, column" in str(info.value)


@pytest.mark.parametrize(
    ("segmentation", "problem"),
    [
        ({"size": [12, 15], "counts": [192]}, "RLE size 15x12 but the image is 16x12 (WxH)"),
        ({"size": [12, 16], "counts": [100, 50]}, "RLE covers 150 pixels but the image has 192"),
        ({"size": [12, 16], "counts": "0"}, "RLE covers 0 pixels but the image has 192"),
    ],
)
def test_coco_rle_of_wrong_size(tmp_path: Path, segmentation: Any, problem: str) -> None:
    data = _coco(tmp_path, annotations=_first_ann(segmentation=segmentation))
    source = InstanceSource(data)
    with pytest.raises(DataError) as info:
        source.load(source.samples[0])
    assert str(info.value) == f"{tmp_path / 'ann.json'}: annotation 1 (image a.png): {problem}"


def test_coco_overlapping_annotations(tmp_path: Path) -> None:
    square = {"segmentation": [[0, 0, 8, 0, 8, 8, 0, 8]]}
    anns = [*_first_ann(**square), {**_first_ann(**square)[0], "id": 2}]
    data = _coco(tmp_path, annotations=anns)
    source = InstanceSource(data)
    with pytest.raises(DataError) as info:
        source.load(source.samples[0])
    assert "overlapping objects in image a.png: annotation 1 and annotation 2 (64 px" in str(
        info.value
    )


def test_rle_string_counts_matches_pycocotools() -> None:
    mask = RNG.random((23, 17)) < 0.3
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle_string_counts(rle["counts"].decode("ascii"))
    assert sum(counts) == mask.size
    assert counts == _uncompressed(mask)
    with pytest.raises(ValueError, match="truncated"):
        rle_string_counts("0\x6f")  # continuation bit set on the last character


def test_not_an_instance_format_and_missing_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an instance format"):
        InstanceSource(DataConfig(format="mask_folder", root=str(tmp_path)))
    with pytest.raises(DataError, match="data root folder not found"):
        InstanceSource(DataConfig(format="coco", root=str(tmp_path / "nope"), annotations="a"))
