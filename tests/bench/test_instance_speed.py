"""``bench/instance_speed.py``: both sides of the speed comparison compute the same function.

The ratio means something only if pixelseg's ResNet-50-FPN Mask R-CNN (COCO layout) is
torchvision's model: the state dict must load strictly and the features must agree.
"""

from __future__ import annotations

import sys

import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
try:
    import instance_speed
finally:
    sys.path.remove(str(REPO / "bench"))


def test_pixelseg_and_torchvision_models_compute_the_same_function() -> None:
    reference, ours = instance_speed.build_models(64)
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor(instance_speed.MEAN).view(3, 1, 1)
    std = torch.tensor(instance_speed.STD).view(3, 1, 1)
    with torch.inference_mode():
        ref_in = reference.transform([image])[0].tensors
        our_in = ours.transform([(image - mean) / std])[0].tensors
        torch.testing.assert_close(our_in, ref_in, atol=1e-5, rtol=0)
        ref_features, our_features = reference.backbone(ref_in), ours.backbone(our_in)
        ref_out, our_out = reference([image])[0], ours([(image - mean) / std])[0]
    assert list(ref_features) == list(our_features)
    for key in ref_features:
        torch.testing.assert_close(our_features[key], ref_features[key], atol=1e-4, rtol=1e-4)
    # Without the eps fix the frozen batch norm (eps 0) would differ from BatchNorm2d (1e-5).
    assert len(ref_out["boxes"]) == len(our_out["boxes"]) == 100
    assert ours.roi_heads.detections_per_img == reference.roi_heads.detections_per_img
