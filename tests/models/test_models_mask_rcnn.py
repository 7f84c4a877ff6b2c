"""Mask R-CNN: presets, training from scratch, RoIAlign vs RoIPool, native size, round trips."""

from __future__ import annotations

import json
import urllib.error
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights
from torchvision.ops.misc import FrozenBatchNorm2d

from pixelseg.errors import ConfigError, PixelsegError
from pixelseg.models import mask_rcnn
from pixelseg.models.fpn_backbone import MultiScaleRoIPool, build_roi_pooler
from pixelseg.models.mask_rcnn import (
    MASK_RCNN_PRESETS,
    build_coco_layout_mask_rcnn,
    build_mask_rcnn,
    create_mask_rcnn,
    predictions_to_label_image,
)

LOSS_KEYS = {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
# Keep proposal and RoI counts small so heads stay cheap on one CPU core.
FAST: dict[str, Any] = {
    "rpn_pre_nms_top_n_train": 200,
    "rpn_post_nms_top_n_train": 64,
    "rpn_pre_nms_top_n_test": 100,
    "rpn_post_nms_top_n_test": 32,
    "box_batch_size_per_image": 32,
}


class StubEncoder(nn.Module):
    """Five stride-2 conv stages honouring the encoder contract (strides 2..32)."""

    def __init__(self, in_channels: int = 3, strides: tuple[int, ...] = (2, 4, 8, 16, 32)):
        super().__init__()
        self.out_channels = (8, 16, 16, 24, 24)
        self.strides = strides
        stages, previous = [], in_channels
        for channels in self.out_channels:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(previous, channels, 3, stride=2, padding=1),
                    nn.GroupNorm(4, channels),
                    nn.ReLU(),
                )
            )
            previous = channels
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def tiny_model(seed: int = 0, **options: Any) -> Any:
    torch.manual_seed(seed)
    settings: dict[str, Any] = {
        "fpn_channels": 16,
        "box_fc_channels": 32,
        "box_head_convs": 1,
        "mask_head_convs": 2,
        **FAST,
    }
    settings.update(options)
    return build_mask_rcnn(StubEncoder(), num_classes=2, **settings)


def square_targets(
    size: tuple[int, int], corners: list[tuple[int, int]], side: int, label: int = 1
) -> dict[str, Tensor]:
    """Targets of ``side``-pixel squares with top-left ``corners`` (y, x)."""
    masks = torch.zeros((len(corners), *size), dtype=torch.uint8)
    boxes = torch.zeros((len(corners), 4))
    for i, (y, x) in enumerate(corners):
        masks[i, y : y + side, x : x + side] = 1
        boxes[i] = torch.tensor([x, y, x + side, y + side], dtype=torch.float32)
    labels = torch.full((len(corners),), label, dtype=torch.int64)
    return {"boxes": boxes, "labels": labels, "masks": masks}


def train_step(model: Any, images: list[Tensor], targets: list[dict[str, Tensor]]) -> dict:
    model.train()
    losses = model(images, targets)
    assert set(losses) == LOSS_KEYS
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    return losses


def test_tiny_model_trains_with_all_layers_and_groupnorm() -> None:
    model = tiny_model()
    images = [torch.randn(3, 64, 64), torch.randn(3, 64, 64)]
    targets = [
        square_targets((64, 64), [(4, 4), (30, 20)], 14),
        square_targets((64, 64), [(40, 40)], 20),
    ]
    train_step(model, images, targets)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d | FrozenBatchNorm2d) for m in model.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.backbone.fpn.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.roi_heads.box_head.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in model.roi_heads.mask_head.modules())
    first_conv = model.backbone.encoder.stages[0][0].weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    mask_logits = model.roi_heads.mask_predictor.mask_fcn_logits.weight
    assert mask_logits.grad is not None and mask_logits.grad.abs().sum() > 0
    # num_classes counts foreground: the heads add background.
    assert model.roi_heads.box_predictor.cls_score.out_features == 3
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 3


def test_eval_outputs_at_input_size() -> None:
    model = tiny_model(box_score_thresh=0.0).eval()
    with torch.no_grad():
        (output,) = model([torch.randn(3, 70, 50)])
    count = output["boxes"].shape[0]
    assert count > 0
    assert output["masks"].shape == (count, 1, 70, 50)
    assert output["scores"].shape == output["labels"].shape == (count,)
    assert (output["boxes"][:, 2] <= 50).all() and (output["boxes"][:, 3] <= 70).all()
    assert set(output["labels"].tolist()) <= {1, 2}


def test_image_without_objects_trains() -> None:
    model = tiny_model()
    empty = {
        "boxes": torch.zeros((0, 4)),
        "labels": torch.zeros((0,), dtype=torch.int64),
        "masks": torch.zeros((0, 64, 64), dtype=torch.uint8),
    }
    losses = train_step(model, [torch.randn(3, 64, 64)], [empty])
    # Nothing to segment or regress: only the classification/objectness terms can be non-zero.
    assert losses["loss_mask"].item() == 0.0
    assert losses["loss_box_reg"].item() == 0.0
    assert losses["loss_objectness"].item() > 0.0


def test_hundreds_of_objects() -> None:
    corners = [(y, x) for y in range(2, 124, 7) for x in range(2, 124, 7)][:300]
    targets = square_targets((128, 128), corners, 5)
    assert targets["boxes"].shape == (300, 4)
    model = tiny_model(anchor_sizes=(8, 16, 32, 64, 128))
    train_step(model, [torch.randn(3, 128, 128)], [targets])
    assert model.roi_heads.detections_per_img == 500


def test_options_are_applied_and_validated() -> None:
    model = tiny_model(
        aspect_ratios=(1.0, 2.0),
        rpn_pre_nms_top_n_test=123,
        rpn_post_nms_top_n_train=45,
        box_detections_per_img=77,
        roi_pooler="pool",
    )
    assert model.rpn.head.cls_logits.out_channels == 2
    assert model.rpn._pre_nms_top_n["testing"] == 123
    assert model.rpn._post_nms_top_n["training"] == 45
    assert model.roi_heads.detections_per_img == 77
    assert isinstance(model.roi_heads.box_roi_pool, MultiScaleRoIPool)
    assert isinstance(model.roi_heads.mask_roi_pool, MultiScaleRoIPool)
    with pytest.raises(ConfigError, match="unknown Mask R-CNN options"):
        tiny_model(rpn_top_n=3)
    with pytest.raises(ConfigError, match="roi_pooler"):
        tiny_model(roi_pooler="warp")
    with pytest.raises(ConfigError, match="anchor_sizes"):
        tiny_model(anchor_sizes=(16, 32))
    with pytest.raises(ConfigError, match="num_classes"):
        build_mask_rcnn(StubEncoder(), num_classes=0)
    with pytest.raises(ConfigError, match="strides"):
        build_mask_rcnn(StubEncoder(strides=(2, 4, 8, 16, 16)), num_classes=1)
    with pytest.raises(ConfigError, match="unknown Mask R-CNN model"):
        create_mask_rcnn("maskrcnn_vgg_fpn", num_classes=1)


def test_roi_pool_trains() -> None:
    model = tiny_model(roi_pooler="pool")
    train_step(model, [torch.randn(3, 64, 64)], [square_targets((64, 64), [(10, 10)], 24)])
    assert model.backbone.fpn.layer_blocks[0][0].weight.grad.abs().sum() > 0


def pyramid(image_size: int, fill: str) -> OrderedDict[str, Tensor]:
    generator = torch.Generator().manual_seed(0)
    maps = OrderedDict()
    for level, stride in enumerate((4, 8, 16, 32)):
        shape = (1, 2, image_size // stride, image_size // stride)
        maps[str(level)] = (
            torch.rand(shape, generator=generator)
            if fill == "random"
            else torch.full(shape, float(level))
        )
    return maps


def test_sub_pixel_shift_changes_roi_align_not_roi_pool() -> None:
    features = pyramid(128, "random")
    box = torch.tensor([[8.0, 8.0, 40.0, 40.0]])
    shifted = box + 0.3
    for kind, should_change in (("pool", False), ("align", True)):
        pooler = build_roi_pooler(kind, 7)
        before = pooler(features, [box], [(128, 128)])
        after = pooler(features, [shifted], [(128, 128)])
        assert before.shape == (1, 2, 7, 7)
        changed = (before - after).abs().max().item()
        assert (changed > 1e-3) == should_change, (kind, changed)


def test_align_and_pool_share_fpn_level_mapping() -> None:
    # Each level is constant at its index, so the pooled value names the level chosen.
    features = pyramid(512, "constant")
    boxes = torch.tensor(
        [[10, 10, 42, 42], [20, 20, 170, 170], [0, 0, 460, 460], [100, 100, 400, 400]],
        dtype=torch.float32,
    )
    # FPN eq. 1, k = floor(4 + log2(sqrt(area) / 224)) clamped to 2..5: sides 32, 150, 460, 300.
    levels = {}
    for kind in ("align", "pool"):
        pooled = build_roi_pooler(kind, 7)(features, [boxes], [(512, 512)])
        levels[kind] = pooled.flatten(1).mean(1)
    torch.testing.assert_close(levels["align"], levels["pool"])
    assert levels["align"].tolist() == [0.0, 1.0, 3.0, 2.0]


def test_transform_keeps_native_size() -> None:
    model = tiny_model()
    image = torch.randn(3, 256, 256)
    for training in (True, False):
        model.train(training)
        images, _ = model.transform([image])
        assert images.tensors.shape == (1, 3, 256, 256)
        assert images.image_sizes == [(256, 256)]
        torch.testing.assert_close(images.tensors[0], image)
    odd, _ = model.transform([torch.randn(3, 250, 230)])
    assert odd.tensors.shape == (1, 3, 256, 256) and odd.image_sizes == [(250, 230)]
    assert odd.tensors[0, :, 250:].abs().sum() == 0


def test_safetensors_round_trip_gives_identical_predictions(tmp_path: Any) -> None:
    model = tiny_model(seed=1, box_score_thresh=0.0).eval()
    image = torch.randn(3, 64, 64)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    fresh = tiny_model(seed=2, box_score_thresh=0.0).eval()
    with torch.no_grad():
        expected = model([image])[0]
        assert not torch.equal(fresh([image])[0]["scores"], expected["scores"])
        fresh.load_state_dict(load_file(str(path)))
        actual = fresh([image])[0]
    assert expected["boxes"].shape[0] > 0
    for key in ("boxes", "labels", "scores", "masks"):
        assert torch.equal(actual[key], expected[key]), key


def test_predictions_to_label_image_resolves_overlaps_by_score() -> None:
    masks = torch.zeros((4, 1, 6, 6))
    masks[0, 0, 0:4, 0:4] = 0.9  # score 0.6
    masks[1, 0, 2:6, 2:6] = 0.8  # score 0.9: wins the overlap
    masks[2, 0, 0:2, 4:6] = 0.3  # below mask threshold: no pixels, no label
    masks[3, 0, 5, 0] = 0.9  # below score threshold
    output = {"masks": masks, "scores": torch.tensor([0.6, 0.9, 0.95, 0.1])}
    labels = predictions_to_label_image(output, score_threshold=0.5, mask_threshold=0.5)
    assert labels.dtype == np.int32 and labels.shape == (6, 6)
    expected = np.zeros((6, 6), dtype=np.int32)
    expected[0:4, 0:4] = 2
    expected[2:6, 2:6] = 1
    np.testing.assert_array_equal(labels, expected)
    none = predictions_to_label_image(output, score_threshold=0.99, mask_threshold=0.5)
    assert none.shape == (6, 6) and not none.any()


def test_coco_weights_error_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(MaskRCNN_ResNet50_FPN_Weights, "get_state_dict", offline)
    with pytest.raises(PixelsegError, match="could not get COCO weights"):
        create_mask_rcnn("maskrcnn_resnet50_fpn", num_classes=1, weights="coco")
    monkeypatch.setattr(mask_rcnn, "_create_encoder", offline)
    with pytest.raises(PixelsegError, match="could not get imagenet weights"):
        create_mask_rcnn("maskrcnn_resnet18_fpn", num_classes=1, weights="imagenet")
    with pytest.raises(ConfigError, match="COCO"):
        create_mask_rcnn("maskrcnn_resnet18_fpn", num_classes=1, weights="coco")


def test_coco_weights_load_into_torchvision_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    coco = build_coco_layout_mask_rcnn(num_classes=90).state_dict()  # 91 with background
    monkeypatch.setattr(MaskRCNN_ResNet50_FPN_Weights, "get_state_dict", lambda *a, **k: coco)
    model = create_mask_rcnn("maskrcnn_resnet50_fpn", num_classes=1, weights="coco")
    state = model.state_dict()
    key = "backbone.body.layer1.0.conv1.weight"
    assert torch.equal(state[key], coco[key])
    assert torch.equal(state["rpn.head.cls_logits.weight"], coco["rpn.head.cls_logits.weight"])
    assert state["roi_heads.box_predictor.cls_score.weight"].shape[0] == 2
    assert model.config["options"]["coco_layout"] is True
    rebuilt = create_mask_rcnn(model.config["name"], num_classes=1, **model.config["options"])
    rebuilt.load_state_dict(state)


def encoders_available() -> bool:
    try:
        from pixelseg.models.encoders import create_encoder  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not encoders_available(), reason="pixelseg.models.encoders not built yet")
@pytest.mark.parametrize("name", sorted(MASK_RCNN_PRESETS))
def test_presets_train_and_predict(name: str) -> None:
    torch.manual_seed(0)
    options = {**FAST, "box_detections_per_img": 8}
    model = create_mask_rcnn(name, num_classes=1, **options)
    assert model.config["name"] == name and model.config["options"]["norm"] == "group"
    json.dumps(model.config)
    assert not any(isinstance(m, nn.BatchNorm2d | FrozenBatchNorm2d) for m in model.modules())
    train_step(model, [torch.randn(3, 64, 64)], [square_targets((64, 64), [(8, 8), (30, 36)], 20)])
    model.eval()
    with torch.no_grad():
        (output,) = model([torch.randn(3, 64, 64)])
    assert output["masks"].shape[1:] == (1, 64, 64)
    assert output["boxes"].shape[0] <= 8


@pytest.mark.skipif(not encoders_available(), reason="pixelseg.models.encoders not built yet")
def test_preset_rebuilds_from_config() -> None:
    torch.manual_seed(0)
    model = create_mask_rcnn(
        "maskrcnn_resnet18_fpn", num_classes=2, in_channels=1, roi_pooler="pool", **FAST
    )
    config = json.loads(json.dumps(model.config))
    rebuilt = create_mask_rcnn(
        config["name"],
        num_classes=config["num_classes"],
        in_channels=config["in_channels"],
        **config["options"],
    )
    rebuilt.load_state_dict(model.state_dict())
    assert isinstance(rebuilt.roi_heads.mask_roi_pool, MultiScaleRoIPool)
    image = torch.randn(1, 64, 64)
    model.eval()
    rebuilt.eval()
    with torch.no_grad():
        expected, actual = model([image])[0], rebuilt([image])[0]
    for key in ("boxes", "scores", "masks"):
        assert torch.equal(expected[key], actual[key])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("roi_pooler", ["align", "pool"])
def test_cuda_autocast_train_and_eval(roi_pooler: str) -> None:
    model = tiny_model(roi_pooler=roi_pooler, box_score_thresh=0.0).cuda()
    targets = square_targets((96, 96), [(8, 8), (40, 50), (70, 10)], 16)
    images = [torch.randn(3, 96, 96, device="cuda")]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        losses = model(images, [{k: v.cuda() for k, v in targets.items()}])
    assert set(losses) == LOSS_KEYS and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        (output,) = model(images)
    assert output["boxes"].shape[0] > 0
    assert output["masks"].shape[1:] == (1, 96, 96) and output["masks"].is_cuda
