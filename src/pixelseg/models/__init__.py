"""Models: a registry, encoders, the FCN, U-Net and DeepLabV3+ families and Mask R-CNN.

Importing this package registers every architecture, so ``create_model`` knows them all.
"""

from pixelseg.models import deeplab, fcn, unet
from pixelseg.models.mask_rcnn import MASK_RCNN_PRESETS
from pixelseg.models.registry import create_model, list_models, register_model

# The presets validate their own options (torchvision's rpn_*/box_* settings among them).
for _name, _factory in MASK_RCNN_PRESETS.items():
    register_model(_name)(_factory)

__all__ = ["create_model", "deeplab", "fcn", "list_models", "register_model", "unet"]
