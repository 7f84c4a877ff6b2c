"""pixelseg.postprocess: instance masks and label images, and watershed splitting."""

from pixelseg.postprocess.masks import (
    fill_holes,
    label_image_to_boxes,
    label_image_to_masks,
    masks_to_boxes,
    masks_to_label_image,
    relabel_sequential,
    remove_small_objects,
)
from pixelseg.postprocess.tuning import tune_watershed
from pixelseg.postprocess.watershed import (
    WatershedParams,
    connected_components_instances,
    split_instances,
)

__all__ = [
    "WatershedParams",
    "connected_components_instances",
    "fill_holes",
    "label_image_to_boxes",
    "label_image_to_masks",
    "masks_to_boxes",
    "masks_to_label_image",
    "relabel_sequential",
    "remove_small_objects",
    "split_instances",
    "tune_watershed",
]
