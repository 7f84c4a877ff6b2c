"""Mask R-CNN presets by name, pretrained weights, and predictions as instance label images.

The model itself is in :mod:`pixelseg.models.mask_rcnn_model` (re-exported here).
``num_classes`` counts foreground classes only; internally torchvision's heads get
``num_classes + 1`` outputs because class 0 is background, so target ``labels`` are 1-based.

A model is rebuilt (e.g. before loading a checkpoint) from its ``config`` dict::

    create_mask_rcnn(cfg["name"], num_classes=cfg["num_classes"],
                     in_channels=cfg["in_channels"], **cfg["options"])

without ``weights``: the checkpoint holds them, and ``options`` records every architecture choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn
from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights

from pixelseg.errors import ConfigError, PixelsegError
from pixelseg.models.mask_rcnn_model import (
    DEFAULT_ANCHOR_SIZES,
    DEFAULT_ASPECT_RATIOS,
    DETECTOR_OPTIONS,
    PixelsegMaskRCNN,
    build_coco_layout_mask_rcnn,
    build_mask_rcnn,
    check_num_classes,
)

__all__ = [
    "DEFAULT_ANCHOR_SIZES",
    "DEFAULT_ASPECT_RATIOS",
    "DETECTOR_OPTIONS",
    "MASK_RCNN_PRESETS",
    "PixelsegMaskRCNN",
    "build_coco_layout_mask_rcnn",
    "build_mask_rcnn",
    "create_mask_rcnn",
    "maskrcnn_mobilenet_v3_fpn",
    "maskrcnn_resnet18_fpn",
    "maskrcnn_resnet50_fpn",
    "predictions_to_label_image",
]

T = TypeVar("T")


def _download(fetch: Callable[[], T], what: str) -> T:
    """Run ``fetch`` (which may download) and turn network/cache failures into one clear error."""
    try:
        return fetch()
    except PixelsegError:
        raise
    except (OSError, RuntimeError, ValueError) as error:  # URLError is an OSError
        raise PixelsegError(
            f"could not get {what}: {error}; download it where a network is reachable into "
            f"{torch.hub.get_dir()}, or pass weights=None to train from scratch"
        ) from error


def _create_encoder(name: str, **kwargs: Any) -> nn.Module:
    # Imported late: the encoders package is optional for build_mask_rcnn on a custom encoder.
    from pixelseg.models.encoders import create_encoder

    encoder: nn.Module = create_encoder(name, **kwargs)
    return encoder


def _as_json(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_as_json(v) for v in value]
    return value


def _set_config(
    model: PixelsegMaskRCNN,
    name: str,
    num_classes: int,
    in_channels: int,
    weights: str | None,
    options: dict[str, Any],
) -> PixelsegMaskRCNN:
    model.config = {
        "name": name,
        "num_classes": num_classes,
        "in_channels": in_channels,
        "weights": weights,
        "options": {key: _as_json(value) for key, value in options.items()},
    }
    return model


def _encoder_preset(
    name: str,
    encoder_name: str,
    *,
    num_classes: int,
    in_channels: int,
    weights: str | None,
    options: dict[str, Any],
) -> PixelsegMaskRCNN:
    if weights == "coco":
        raise ConfigError(f"{name}: COCO weights exist for maskrcnn_resnet50_fpn only")
    check_num_classes(num_classes)
    # ImageNet weights come from BatchNorm backbones; from scratch GroupNorm suits tiny batches.
    norm = options.pop("norm", "group" if weights is None else "batch")
    if weights is None:
        encoder = _create_encoder(encoder_name, in_channels=in_channels, norm=norm)
    else:
        encoder = _download(
            lambda: _create_encoder(
                encoder_name, in_channels=in_channels, norm=norm, weights=weights
            ),
            f"{weights} weights for {encoder_name}",
        )
    model = build_mask_rcnn(encoder, num_classes=num_classes, in_channels=in_channels, **options)
    return _set_config(model, name, num_classes, in_channels, weights, {"norm": norm, **options})


def _coco_preset(
    *, num_classes: int, in_channels: int, weights: str | None, options: dict[str, Any]
) -> PixelsegMaskRCNN:
    name = "maskrcnn_resnet50_fpn"
    if in_channels != 3:
        raise ConfigError(f"{name}: COCO weights need in_channels=3, got {in_channels}")
    if weights not in (None, "coco"):
        raise ConfigError(f"{name}: coco_layout takes weights None or 'coco', got {weights!r}")
    state_dict = None
    if weights == "coco":
        weights_enum = MaskRCNN_ResNet50_FPN_Weights.COCO_V1
        state_dict = _download(
            lambda: weights_enum.get_state_dict(progress=True, check_hash=True), "COCO weights"
        )
    model = build_coco_layout_mask_rcnn(num_classes=num_classes, state_dict=state_dict, **options)
    recorded = {"coco_layout": True, **options}
    return _set_config(model, name, num_classes, in_channels, weights, recorded)


def maskrcnn_resnet50_fpn(
    *, num_classes: int, in_channels: int = 3, weights: str | None = None, **options: Any
) -> PixelsegMaskRCNN:
    """Mask R-CNN, ResNet-50 + FPN (the standard).

    Args:
        num_classes: foreground classes.
        in_channels: image channels.
        weights: ``None`` (from scratch), ``"imagenet"`` (backbone), a local backbone weights
            file (see ``create_encoder``) or ``"coco"`` (the whole detector, in torchvision's
            layout: see ``build_coco_layout_mask_rcnn``).
        **options: :func:`build_mask_rcnn` options, ``norm`` for the encoder, or
            ``coco_layout=True`` to rebuild a COCO-initialised model without downloading.

    Returns:
        The model, with ``config`` set.
    """
    if weights == "coco" or options.pop("coco_layout", False):
        return _coco_preset(
            num_classes=num_classes, in_channels=in_channels, weights=weights, options=options
        )
    return _encoder_preset(
        "maskrcnn_resnet50_fpn",
        "resnet50",
        num_classes=num_classes,
        in_channels=in_channels,
        weights=weights,
        options=options,
    )


def maskrcnn_resnet18_fpn(
    *, num_classes: int, in_channels: int = 3, weights: str | None = None, **options: Any
) -> PixelsegMaskRCNN:
    """Mask R-CNN, ResNet-18 + FPN (CPU-practical); arguments as :func:`maskrcnn_resnet50_fpn`."""
    return _encoder_preset(
        "maskrcnn_resnet18_fpn",
        "resnet18",
        num_classes=num_classes,
        in_channels=in_channels,
        weights=weights,
        options=options,
    )


def maskrcnn_mobilenet_v3_fpn(
    *, num_classes: int, in_channels: int = 3, weights: str | None = None, **options: Any
) -> PixelsegMaskRCNN:
    """Mask R-CNN, MobileNetV3-Large + FPN; arguments as :func:`maskrcnn_resnet50_fpn`."""
    return _encoder_preset(
        "maskrcnn_mobilenet_v3_fpn",
        "mobilenet_v3_large",
        num_classes=num_classes,
        in_channels=in_channels,
        weights=weights,
        options=options,
    )


MASK_RCNN_PRESETS: dict[str, Callable[..., PixelsegMaskRCNN]] = {
    "maskrcnn_resnet50_fpn": maskrcnn_resnet50_fpn,
    "maskrcnn_resnet18_fpn": maskrcnn_resnet18_fpn,
    "maskrcnn_mobilenet_v3_fpn": maskrcnn_mobilenet_v3_fpn,
}


def create_mask_rcnn(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    weights: str | None = None,
    **options: Any,
) -> PixelsegMaskRCNN:
    """Build a Mask R-CNN preset by name (see ``MASK_RCNN_PRESETS``).

    Args:
        name: preset name, e.g. ``"maskrcnn_resnet18_fpn"``.
        num_classes: foreground classes (background is added internally).
        in_channels: image channels.
        weights: ``None``, ``"imagenet"`` or (ResNet-50 only) ``"coco"``.
        **options: architecture and torchvision detector options, recorded in ``model.config``.

    Returns:
        The model.

    Raises:
        ConfigError: unknown name or option.
        PixelsegError: requested weights cannot be downloaded.
    """
    if name not in MASK_RCNN_PRESETS:
        raise ConfigError(
            f"unknown Mask R-CNN model {name!r}; choose from {sorted(MASK_RCNN_PRESETS)}"
        )
    return MASK_RCNN_PRESETS[name](
        num_classes=num_classes, in_channels=in_channels, weights=weights, **options
    )


def predictions_to_label_image(
    output: dict[str, torch.Tensor], *, score_threshold: float, mask_threshold: float
) -> np.ndarray:
    """Resolve one image's predicted masks into an instance label image.

    Detections scoring below ``score_threshold`` are dropped; a pixel belongs to the highest
    scoring detection whose mask probability there is ``>= mask_threshold``. Instances are
    numbered ``1..K`` by descending score, skipping those left without pixels.

    Args:
        output: one eval output of the model: ``scores`` ``(N,)`` and ``masks`` ``(N, 1, H, W)``
            probabilities (``(N, H, W)`` is accepted too).
        score_threshold: minimum detection score.
        mask_threshold: minimum mask probability.

    Returns:
        ``(H, W)`` int32 label image, 0 for background.
    """
    masks = output["masks"].detach()
    if masks.dim() == 4:
        masks = masks[:, 0]
    scores = output["scores"].detach().to(masks.device)
    order = torch.argsort(scores, descending=True, stable=True)
    order = order[scores[order] >= score_threshold]
    if order.numel() == 0:
        return np.zeros(tuple(masks.shape[-2:]), dtype=np.int32)
    inside = masks[order] >= mask_threshold
    # argmax returns the first maximum: the highest-scoring instance covering the pixel.
    winner = torch.argmax(inside.to(torch.uint8), dim=0)
    labels = torch.where(inside.any(dim=0), winner + 1, 0).cpu().numpy()
    _, consecutive = np.unique(labels, return_inverse=True)
    consecutive = consecutive.reshape(labels.shape)
    if not (labels == 0).any():
        consecutive = consecutive + 1
    return consecutive.astype(np.int32)
