"""Semantic segmentation models: a registry, encoders and the FCN, U-Net and DeepLabV3+ families.

Importing this package registers every architecture, so ``create_model`` knows them all.
"""

from pixelseg.models import deeplab, fcn, unet
from pixelseg.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "deeplab", "fcn", "list_models", "register_model", "unet"]
