"""Instance transforms: crop-first training crops built from the cropped label image, the
evaluation padding, and foreground-centred crops."""

from __future__ import annotations

import pickle

import numpy as np
import torch

from pixelseg.data.instance.compact import CompactInstances, pack_instances, sample_from_compact
from pixelseg.data.instance.formats import LoadedInstances
from pixelseg.data.instance.transforms import boxes_from_masks, build_instance_transforms

SPOTS = [(2, 9, 3, 15), (20, 35, 30, 50), (30, 33, 0, 4)]


def _packed(
    height: int = 40, width: int = 56, spots: list[tuple[int, int, int, int]] | None = None
) -> CompactInstances:
    """Rectangles as objects ``1..N`` (ids ``10..``); image channel 0 holds each object's number."""
    spots = SPOTS if spots is None else spots
    label_image = np.zeros((height, width), dtype=np.int32)
    for k, (y1, y2, x1, x2) in enumerate(spots, start=1):
        label_image[y1:y2, x1:x2] = k
    if spots:
        label_image[9, 14] = 1  # not a rectangle: the tight box still reaches it
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 0] = label_image
    count = len(spots)
    loaded = LoadedInstances(
        image, label_image, np.arange(10, 10 + count), np.arange(1, count + 1, dtype=np.int64)
    )
    return pack_instances(loaded)


def test_boxes_from_masks_are_tight_pixel_edges() -> None:
    boxes = boxes_from_masks(sample_from_compact(_packed(), "s").masks)
    assert boxes.tolist() == [[3, 2, 15, 10], [30, 20, 50, 35], [0, 30, 4, 33]]
    assert boxes_from_masks(torch.zeros((2, 5, 5), dtype=torch.bool)).tolist() == [[0] * 4] * 2


def test_training_crops_are_the_objects_of_the_cropped_label_image() -> None:
    torch.manual_seed(0)
    transform = build_instance_transforms(train=True, crop_size=32)
    seen_dropped = False
    for _ in range(16):
        out, planes = transform.from_compact(_packed(), "s")
        instances = planes["instances"]
        assert out.image.shape == (3, 32, 32) and instances.shape == (32, 32)
        assert out.masks.dtype == torch.bool and out.masks.shape[1:] == (32, 32)
        assert torch.equal(out.boxes, boxes_from_masks(out.masks))
        assert len(out.labels) == len(out.ids) == len(out.masks) == len(out.boxes)
        assert bool(out.masks.flatten(1).any(1).all())  # objects the crop removed are dropped
        seen_dropped |= len(out.ids) < 3
        for position, (mask, object_id) in enumerate(zip(out.masks, out.ids), start=1):
            assert torch.equal(mask, instances == position)
            number = torch.round(out.image[0][mask] * 255)
            assert torch.all(number == float(object_id - 9))  # pixels moved together
        assert torch.equal(out.ids - 9, out.labels)
        assert int(instances.max()) == len(out.ids)
    assert seen_dropped


def test_same_torch_seed_same_crop() -> None:
    transform = build_instance_transforms(
        train=True, crop_size=32, scale_range=(0.5, 2.0), color_jitter=0.2
    )
    outputs = []
    for _ in range(2):
        torch.manual_seed(7)
        outputs.append(transform.from_compact(_packed(), "s"))
    (first, first_planes), (second, second_planes) = outputs
    assert torch.equal(first.image, second.image) and torch.equal(first.ids, second.ids)
    assert torch.equal(first_planes["instances"], second_planes["instances"])


def test_small_objects_are_dropped_like_sanitize_bounding_boxes() -> None:
    packed = _packed(32, 32, spots=[(2, 12, 2, 12), (20, 30, 20, 21)])  # the second 1 px wide
    torch.manual_seed(0)
    transform = build_instance_transforms(train=True, crop_size=32, min_size=2.0, rot90=False)
    out, planes = transform.from_compact(packed, "s")
    assert out.ids.tolist() == [10]
    assert set(planes["instances"].unique().tolist()) == {0, 1}


def test_planes_are_cropped_with_the_label_image() -> None:
    packed = _packed(64, 64, spots=[(5, 20, 5, 20), (30, 50, 25, 45)])
    plane = packed.label_image.astype(np.float32) * 2
    transform = build_instance_transforms(train=True, crop_size=48, scale_range=(0.7, 1.4))
    torch.manual_seed(2)
    for _ in range(6):
        out, planes = transform.from_compact(packed, "s", planes={"twice": (plane, -1.0)})
        twice, instances = planes["twice"], planes["instances"]
        padded = out.ignore if out.ignore is not None else torch.zeros_like(instances, dtype=bool)
        assert torch.all(twice[padded] == -1.0)
        for position, object_id in enumerate(out.ids, start=1):
            assert torch.all(twice[instances == position] == 2.0 * float(object_id - 9))


def test_eval_padding_marks_ignore_and_keeps_boxes() -> None:
    out, planes = build_instance_transforms(train=False, crop_size=32).from_compact(_packed(), "s")
    assert planes == {}
    assert out.image.shape == (3, 64, 64)
    assert out.ignore is not None
    assert out.ignore[:40, :56].sum() == 0 and out.ignore.sum() == 64 * 64 - 40 * 56
    assert torch.equal(out.boxes, sample_from_compact(_packed(), "s").boxes)
    assert out.ids.tolist() == [10, 11, 12]


def test_crop_of_a_small_image_pads_and_ignores_and_no_objects_is_fine() -> None:
    torch.manual_seed(1)
    transform = build_instance_transforms(train=True, crop_size=64, scale_range=(0.5, 2.0))
    out, planes = transform.from_compact(_packed(20, 30, spots=[]), "s")
    assert out.masks.shape[0] == 0 and out.boxes.shape == (0, 4) and out.labels.shape == (0,)
    assert out.ignore is not None and out.ignore.any() and not out.ignore.all()
    assert (planes["instances"] == 0).all()
    assert torch.all(out.image[:, out.ignore] == 0)  # padded with 0 before normalisation


def test_foreground_crops_find_a_tiny_object() -> None:
    packed = _packed(400, 400, spots=[(300, 304, 90, 94)])
    hits = {}
    for share in (0.0, 1.0):
        transform = build_instance_transforms(train=True, crop_size=64, foreground_share=share)
        torch.manual_seed(0)
        hits[share] = sum(len(transform.from_compact(packed, "s")[0].ids) for _ in range(200))
    assert hits[1.0] == 200  # always centred on the object: always in the crop
    assert hits[0.0] < 30  # uniform: (64 + 4)^2 / 400^2 = 3 % of crops


def test_transform_pickles_for_dataloader_workers() -> None:
    transform = pickle.loads(pickle.dumps(build_instance_transforms(train=True, crop_size=32)))
    assert transform.from_compact(_packed(), "s")[0].image.shape == (3, 32, 32)
