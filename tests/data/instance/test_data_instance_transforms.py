"""Instance transforms keep image, masks, boxes and the ignore region aligned."""

from __future__ import annotations

import torch
from torchvision import tv_tensors

from pixelseg.data.instance.transforms import (
    RandomRot90Boxes,
    boxes_from_masks,
    build_instance_transforms,
)
from pixelseg.structures import InstanceSample


def _sample(num: int = 3, height: int = 40, width: int = 56) -> InstanceSample:
    masks = torch.zeros((num, height, width), dtype=torch.bool)
    spots = [(2, 9, 3, 15), (20, 35, 30, 50), (30, 33, 0, 4)]
    for k, (y1, y2, x1, x2) in enumerate(spots[:num]):
        masks[k, y1:y2, x1:x2] = True
    if num:
        masks[0, 9, 14] = True  # not a rectangle: the tight box still reaches it
    # The image encodes each object's index so that alignment can be checked after transforms.
    image = torch.zeros((3, height, width))
    for k in range(num):
        image[0][masks[k]] = k + 1
    return InstanceSample(
        image=image,
        masks=masks,
        boxes=boxes_from_masks(masks),
        labels=torch.arange(1, num + 1),
        ids=torch.arange(10, 10 + num),
        id="s",
    )


def test_boxes_from_masks_are_tight_pixel_edges() -> None:
    boxes = boxes_from_masks(_sample().masks)
    assert boxes.tolist() == [[3, 2, 15, 10], [30, 20, 50, 35], [0, 30, 4, 33]]
    assert boxes_from_masks(torch.zeros((2, 5, 5), dtype=torch.bool)).tolist() == [[0] * 4] * 2


def test_rot90_moves_boxes_with_masks() -> None:
    sample = _sample()
    for k in range(4):
        step = RandomRot90Boxes()
        params = {"k": k}
        masks = step.transform(tv_tensors.Mask(sample.masks), params)
        boxes = step.transform(
            tv_tensors.BoundingBoxes(sample.boxes, format="XYXY", canvas_size=(40, 56)), params
        )
        assert torch.equal(boxes.as_subclass(torch.Tensor), boxes_from_masks(masks))
        assert tuple(boxes.canvas_size) == tuple(masks.shape[-2:])


def test_training_transforms_keep_everything_aligned() -> None:
    torch.manual_seed(0)
    transform = build_instance_transforms(train=True, crop_size=32)
    seen_dropped = False
    for _ in range(12):
        out = transform(_sample())
        assert out.image.shape == (3, 32, 32)
        assert out.masks.dtype == torch.bool and out.masks.shape[1:] == (32, 32)
        assert torch.equal(out.boxes, boxes_from_masks(out.masks))
        assert len(out.labels) == len(out.ids) == len(out.masks) == len(out.boxes)
        assert bool(out.masks.flatten(1).any(1).all())  # objects the crop removed are dropped
        seen_dropped |= len(out.ids) < 3
        for mask, label in zip(out.masks, out.labels):
            assert torch.all(out.image[0][mask] == label.float())  # pixels moved together
        assert torch.equal(out.ids - 9, out.labels)
    assert seen_dropped


def test_eval_padding_marks_ignore_and_keeps_boxes() -> None:
    out = build_instance_transforms(train=False, crop_size=32)(_sample())
    assert out.image.shape == (3, 64, 64)
    assert out.ignore is not None
    assert out.ignore[:40, :56].sum() == 0 and out.ignore.sum() == 64 * 64 - 40 * 56
    assert torch.equal(out.boxes, _sample().boxes)
    assert out.ids.tolist() == [10, 11, 12]


def test_crop_of_a_small_image_pads_and_ignores_and_no_objects_is_fine() -> None:
    torch.manual_seed(1)
    transform = build_instance_transforms(train=True, crop_size=64, scale_range=(0.5, 2.0))
    out = transform(_sample(num=0, height=20, width=30))
    assert out.masks.shape[0] == 0 and out.boxes.shape == (0, 4) and out.labels.shape == (0,)
    assert out.ignore is not None and out.ignore.any() and not out.ignore.all()


def test_transform_pickles_for_dataloader_workers() -> None:
    import pickle

    transform = pickle.loads(pickle.dumps(build_instance_transforms(train=True, crop_size=32)))
    assert transform(_sample()).image.shape == (3, 32, 32)
