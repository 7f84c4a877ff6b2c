"""Mask R-CNN ResNet-50-FPN inference speed: pixelseg vs torchvision, same process, same images.

Usage::

    python bench/instance_speed.py --images 6 --size 512 --rounds 3 \
        --out bench/results/instance_speed.json

Both sides are the same architecture: torchvision's
``maskrcnn_resnet50_fpn(weights=None, weights_backbone=None)`` and pixelseg's
``maskrcnn_resnet50_fpn`` in that layout (``coco_layout=True``, 90 foreground classes, the same
anchors, 100 detections per image), with torchvision's randomly initialised weights copied into
pixelseg's model (and its frozen batch norm given the eps of torchvision's untrained
``BatchNorm2d``), so both compute the same function. ``box_score_thresh=0`` on both sides, so
random weights still send 100 detections per image through the mask head. The images are DSB2018
test images cropped or zero-padded to ``size`` x ``size``; torchvision gets
``min_size=max_size=size`` (no rescaling) and normalises inside its transform, pixelseg gets the
same image normalised beforehand (its data pipeline's job). Rounds alternate between the two and
the median round is reported; pixelseg is also timed with its conversion of the detections to an
instance label image (what ``pixelseg predict`` writes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CONFIG_DIR, instance_splits, machine_info, write_result
from pixelseg.config import load_config

SCHEMA = 1
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
TORCHVISION_ANCHORS = ((32,), (64,), (128,), (256,), (512,))


def test_images(count: int, size: int) -> list[torch.Tensor]:
    """``count`` DSB2018 test images as ``(3, size, size)`` floats in ``[0, 1]`` (crop or pad)."""
    config = load_config(CONFIG_DIR / "dsb2018_instances.toml")
    dataset = instance_splits(config, ("test",))["test"]
    images = []
    for index in range(min(count, len(dataset))):
        image = dataset.load(index).image[..., :3].astype(np.float32) / 255.0
        canvas = np.zeros((size, size, 3), np.float32)
        height, width = min(size, image.shape[0]), min(size, image.shape[1])
        canvas[:height, :width] = image[:height, :width]
        images.append(torch.from_numpy(canvas).permute(2, 0, 1).contiguous())
    return images


def build_models(size: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """torchvision's model and pixelseg's, same layout, same (random) weights, eval mode."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    from torchvision.models.detection._utils import overwrite_eps

    from pixelseg.models.mask_rcnn import maskrcnn_resnet50_fpn as pixelseg_maskrcnn

    torch.manual_seed(0)
    reference = maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=size, max_size=size, box_score_thresh=0.0
    )
    ours = pixelseg_maskrcnn(
        num_classes=90,
        coco_layout=True,
        anchor_sizes=TORCHVISION_ANCHORS,
        box_detections_per_img=100,
        box_score_thresh=0.0,
    )
    ours.load_state_dict(reference.state_dict(), strict=True)
    # Without weights torchvision builds plain BatchNorm2d (eps 1e-5), where pixelseg's COCO
    # layout has FrozenBatchNorm2d with eps 0 (right for the COCO weights): match the eps, so
    # both compute the same function (the same per-channel affine op in eval mode).
    overwrite_eps(ours, 1e-5)
    return reference.eval(), ours.eval()


def _time(fn: Callable[[torch.Tensor], Any], images: Sequence[torch.Tensor]) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for image in images:
            fn(image)
    return time.perf_counter() - start


def measure(*, count: int = 6, size: int = 512, rounds: int = 3) -> dict[str, Any]:
    """Images/s of both models (and pixelseg with its label image), median of ``rounds``."""
    from pixelseg.models.mask_rcnn import predictions_to_label_image

    images = test_images(count, size)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    normalised = [(image - mean) / std for image in images]
    reference, ours = build_models(size)
    with torch.inference_mode():
        ref_in = reference.transform([images[0]])[0].tensors
        our_in = ours.transform([normalised[0]])[0].tensors
        ref_features, our_features = reference.backbone(ref_in), ours.backbone(our_in)
        ref_out, our_out = reference([images[0]])[0], ours([normalised[0]])[0]
    same = {
        "input_max_difference": float((ref_in - our_in).abs().max()),
        "feature_max_difference": max(
            float((ref_features[k] - our_features[k]).abs().max()) for k in ref_features
        ),
        "detections": [len(ref_out["boxes"]), len(our_out["boxes"])],
    }

    def run_reference(image: torch.Tensor) -> Any:
        return reference([image])

    def run_ours(image: torch.Tensor) -> Any:
        return ours([image])

    def run_ours_labels(image: torch.Tensor) -> Any:
        output = ours([image])[0]
        return predictions_to_label_image(output, score_threshold=0.5, mask_threshold=0.5)

    times: dict[str, list[float]] = {"torchvision": [], "pixelseg": [], "pixelseg_label_image": []}
    for _ in range(rounds):
        times["torchvision"].append(_time(run_reference, images))
        times["pixelseg"].append(_time(run_ours, normalised))
        times["pixelseg_label_image"].append(_time(run_ours_labels, normalised))
    per_second = {name: count / statistics.median(values) for name, values in times.items()}
    return {
        "schema": SCHEMA,
        "group": "instance_speed",
        "images": count,
        "size": size,
        "rounds": rounds,
        "round_seconds": times,
        "images_per_second": per_second,
        "ratio_pixelseg_over_torchvision": per_second["pixelseg"] / per_second["torchvision"],
        "ratio_with_label_image": per_second["pixelseg_label_image"] / per_second["torchvision"],
        "same_output_check": same,
        "machine": machine_info(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", help="result JSON path")
    args = parser.parse_args(argv)
    result = measure(count=args.images, size=args.size, rounds=args.rounds)
    speed = result["images_per_second"]
    print(
        f"{args.size} px: torchvision {speed['torchvision']:.3f} images/s, pixelseg "
        f"{speed['pixelseg']:.3f} ({result['ratio_pixelseg_over_torchvision']:.2f}x), with label "
        f"image {speed['pixelseg_label_image']:.3f} ({result['ratio_with_label_image']:.2f}x); "
        f"check {result['same_output_check']}"
    )
    if args.out:
        write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
