"""The Mask R-CNN model: torchvision's ``MaskRCNN`` on a pixelseg encoder with a GroupNorm FPN.

Two stages: a region proposal network over a five-level feature pyramid, then for every
proposal a class score, a box refinement and a binary mask from RoI-pooled features. Defaults
suit training from scratch at native image size: GroupNorm in encoder, FPN and heads, all layers
trainable, no resizing (images only padded to a multiple of 32), small anchors, up to 500
detections per image.

``num_classes`` counts foreground classes only; torchvision's heads get ``num_classes + 1``
outputs because class 0 is background, so target ``labels`` are 1-based.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models import resnet50
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection._utils import overwrite_eps
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import (
    FastRCNNConvFCHead,
    FastRCNNPredictor,
    RPNHead,
)
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops.misc import FrozenBatchNorm2d

from pixelseg.errors import ConfigError
from pixelseg.models.fpn_backbone import (
    EncoderFPN,
    NativeSizeTransform,
    build_roi_pooler,
    group_norm,
)

DEFAULT_ANCHOR_SIZES: tuple[tuple[int, ...], ...] = ((16,), (32,), (64,), (128,), (256,))
DEFAULT_ASPECT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)
# Crowded images (hundreds of nuclei) need more than torchvision's 100 detections.
DEFAULT_DETECTIONS_PER_IMAGE = 500

# torchvision's scalar RPN / box-head settings, passed straight through (torchvision names).
_MODULE_ARGS = {"rpn_anchor_generator", "rpn_head", "box_roi_pool", "box_head", "box_predictor"}
DETECTOR_OPTIONS: frozenset[str] = frozenset(
    name
    for name in inspect.signature(MaskRCNN.__init__).parameters
    if name.startswith(("rpn_", "box_")) and name not in _MODULE_ARGS
)


class PixelsegMaskRCNN(MaskRCNN):
    """torchvision's ``MaskRCNN`` with the ``config`` the engine saves next to its weights.

    Training: ``model(images, targets)`` with ``images`` a list of ``(C, H, W)`` float tensors
    and targets dicts of ``boxes`` ``(N, 4)`` XYXY float, ``labels`` ``(N,)`` int64 in
    ``1..num_classes`` and ``masks`` ``(N, H, W)`` uint8 (``N`` may be 0); returns the loss dict
    (``loss_classifier``, ``loss_box_reg``, ``loss_mask``, ``loss_objectness``,
    ``loss_rpn_box_reg``).
    Eval: returns per image ``boxes`` ``(K, 4)``, ``labels`` ``(K,)``, ``scores`` ``(K,)`` and
    ``masks`` ``(K, 1, H, W)`` probabilities at the input size.
    """

    config: dict[str, Any]


def check_num_classes(num_classes: int) -> None:
    """Raise ``ConfigError`` unless ``num_classes`` (foreground classes) is an int >= 1."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(
            f"num_classes counts foreground classes and must be >= 1, got {num_classes}"
        )


def _anchor_generator(
    anchor_sizes: Sequence[int | Sequence[int]], aspect_ratios: Sequence[float]
) -> AnchorGenerator:
    sizes = tuple(
        (int(s),) if isinstance(s, int | float) else tuple(int(v) for v in s) for s in anchor_sizes
    )
    # One size group per pyramid level: "0".."3" and "pool".
    if len(sizes) != 5 or any(len(s) == 0 for s in sizes):
        raise ConfigError(f"anchor_sizes needs one non-empty entry per FPN level (5), got {sizes}")
    ratios = tuple(float(r) for r in aspect_ratios)
    if not ratios or min(ratios) <= 0:
        raise ConfigError(f"aspect_ratios must be positive numbers, got {ratios}")
    return AnchorGenerator(sizes, (ratios,) * len(sizes))


def _detector_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - DETECTOR_OPTIONS)
    if unknown:
        raise ConfigError(
            f"unknown Mask R-CNN options {unknown}; valid: {sorted(DETECTOR_OPTIONS)} "
            "and the architecture options of build_mask_rcnn"
        )
    return {"box_detections_per_img": DEFAULT_DETECTIONS_PER_IMAGE, **options}


def build_mask_rcnn(
    encoder: nn.Module,
    *,
    num_classes: int,
    in_channels: int = 3,
    roi_pooler: str = "align",
    fpn_channels: int = 256,
    anchor_sizes: Sequence[int | Sequence[int]] = DEFAULT_ANCHOR_SIZES,
    aspect_ratios: Sequence[float] = DEFAULT_ASPECT_RATIOS,
    box_head_convs: int = 4,
    box_fc_channels: int = 1024,
    mask_head_convs: int = 4,
    **detector_options: Any,
) -> PixelsegMaskRCNN:
    """Mask R-CNN on any encoder honouring the encoder contract (five levels, strides 2..32).

    Args:
        encoder: the backbone; its levels 2..5 (strides 4..32) feed the FPN.
        num_classes: foreground classes (background is added internally).
        in_channels: image channels.
        roi_pooler: ``"align"`` (RoIAlign) or ``"pool"`` (RoIPool), for box and mask branch.
        fpn_channels: width of the pyramid and of every head convolution.
        anchor_sizes: anchor side(s) in pixels per level, five entries (``"0"``..``"3"``, pool).
        aspect_ratios: anchor height/width ratios, the same at every level.
        box_head_convs: GroupNorm 3x3 convolutions of the box head before its FC layer.
        box_fc_channels: width of the box head's FC layer.
        mask_head_convs: GroupNorm 3x3 convolutions of the mask head.
        **detector_options: torchvision's scalar ``rpn_*``/``box_*`` settings (see
            ``DETECTOR_OPTIONS``), e.g. ``rpn_pre_nms_top_n_train``, ``rpn_post_nms_top_n_test``,
            ``box_detections_per_img`` (default 500), ``box_score_thresh``.

    Returns:
        The model with all parameters trainable (``config`` is set by the presets only).

    Raises:
        ConfigError: an option is invalid or unknown.
    """
    check_num_classes(num_classes)
    anchors = _anchor_generator(anchor_sizes, aspect_ratios)
    backbone = EncoderFPN(encoder, out_channels=fpn_channels)
    box_head = FastRCNNConvFCHead(
        (fpn_channels, 7, 7), [fpn_channels] * box_head_convs, [box_fc_channels], group_norm
    )
    mask_head = MaskRCNNHeads(fpn_channels, [fpn_channels] * mask_head_convs, 1, group_norm)
    model = PixelsegMaskRCNN(
        backbone,
        rpn_anchor_generator=anchors,
        rpn_head=RPNHead(fpn_channels, anchors.num_anchors_per_location()[0]),
        box_roi_pool=build_roi_pooler(roi_pooler, 7),
        box_head=box_head,
        box_predictor=FastRCNNPredictor(box_fc_channels, num_classes + 1),
        mask_roi_pool=build_roi_pooler(roi_pooler, 14),
        mask_head=mask_head,
        mask_predictor=MaskRCNNPredictor(fpn_channels, fpn_channels, num_classes + 1),
        **_detector_kwargs(detector_options),
    )
    model.transform = NativeSizeTransform(in_channels=in_channels)
    model.requires_grad_(True)
    return model


def build_coco_layout_mask_rcnn(
    *,
    num_classes: int,
    state_dict: dict[str, torch.Tensor] | None = None,
    roi_pooler: str = "align",
    anchor_sizes: Sequence[int | Sequence[int]] = DEFAULT_ANCHOR_SIZES,
    aspect_ratios: Sequence[float] = DEFAULT_ASPECT_RATIOS,
    **detector_options: Any,
) -> PixelsegMaskRCNN:
    """torchvision's own ResNet-50-FPN Mask R-CNN layout, so its COCO weights load into it.

    Frozen BatchNorm (eps 0, as for those weights) and torchvision's un-normalised heads; every
    other layer is trainable; images stay at native size and 3 channels.

    Args:
        num_classes: foreground classes.
        state_dict: torchvision's COCO state dict, or ``None`` to only build the layout (to load
            a checkpoint into). Tensors whose shapes differ (the class-specific predictors, an
            RPN head for another anchor count) are left at their fresh initialisation.
        roi_pooler: ``"align"`` or ``"pool"``.
        anchor_sizes: as :func:`build_mask_rcnn`.
        aspect_ratios: as :func:`build_mask_rcnn`.
        **detector_options: as :func:`build_mask_rcnn`.

    Returns:
        The model.
    """
    check_num_classes(num_classes)
    backbone = _resnet_fpn_extractor(resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 5)
    model = PixelsegMaskRCNN(
        backbone,
        num_classes=num_classes + 1,
        rpn_anchor_generator=_anchor_generator(anchor_sizes, aspect_ratios),
        box_roi_pool=build_roi_pooler(roi_pooler, 7),
        mask_roi_pool=build_roi_pooler(roi_pooler, 14),
        **_detector_kwargs(detector_options),
    )
    model.transform = NativeSizeTransform(in_channels=3)
    if state_dict is not None:
        own = model.state_dict()
        model.load_state_dict(
            {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape},
            strict=False,
        )
    # Not in the state dict: set always, so a rebuilt model predicts exactly like the original.
    overwrite_eps(model, 0.0)
    return model
