"""Images of one size predicted together: one forward pass for a batch of a folder's images.

``pixelseg predict`` groups consecutive images of the same size (whole-image prediction of a
dense task, no test-time augmentation) into batches of ``--batch`` images; anything else —
tiled images, TTA, Mask R-CNN — is predicted one at a time. ``auto`` is one image per pass on a
CPU, where a batch of 8 ran slower per image than single images (``bench/inference_speed.py``:
smp's U-Net 5.11 vs 5.63 images/s in bf16, 2.41 vs 3.04 in fp32, on AMD EPYC Zen 4), and
:data:`GPU_BATCH` on a GPU, where one image leaves most of the device idle.
"""

from __future__ import annotations

import torch

from pixelseg.errors import ConfigError
from pixelseg.inference.nodata import without_nodata
from pixelseg.inference.predictor import Predictor
from pixelseg.inference.prepared import PreparedImage
from pixelseg.structures import Prediction, Region

#: Images per forward pass with ``--batch auto`` on a GPU.
GPU_BATCH = 8


def batch_size(asked: str | int, device: torch.device) -> int:
    """``--batch``: a positive whole number, or ``auto`` (1 on a CPU, :data:`GPU_BATCH` on a
    GPU).

    Raises:
        ConfigError: neither ``auto`` nor a whole number of at least 1.
    """
    if asked == "auto":
        return 1 if device.type == "cpu" else GPU_BATCH
    text = str(asked)
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--batch {asked}: expected auto or a whole number of images (>= 1)")
    return int(text)


def batchable(predictor: Predictor, prepared: PreparedImage) -> bool:
    """Whether ``prepared`` can share a forward pass: a dense task's whole-image prediction
    without test-time augmentation."""
    if not predictor.task.dense_output or predictor.tta:
        return False
    return predictor.tiles_for((prepared.image.shape[0], prepared.image.shape[1])) is None


def predict_batch(predictor: Predictor, images: list[PreparedImage]) -> list[Prediction]:
    """The predictions of ``images`` (as :meth:`Predictor.predict_prepared` gives them), those
    of one size that :func:`batchable` allows in one forward pass."""
    shapes = {tuple(item.normalized.shape) for item in images}
    if len(images) < 2 or len(shapes) > 1 or not all(batchable(predictor, i) for i in images):
        return [predictor.predict_prepared(item) for item in images]
    predictor.plan_for(images[0].normalized)
    batch = torch.stack([item.normalized for item in images])
    task = predictor.task
    with torch.no_grad():
        maps = task.dense_forward(predictor.model, batch, autocast=predictor.autocast)
    predictions = []
    for item, item_maps in zip(images, maps):
        height, width = item.image.shape[:2]
        region = Region((height, width), ignore=item.nodata)
        prediction = task.from_dense(item_maps[:, :height, :width], region=region)
        predictions.append(without_nodata(prediction, item.nodata, predictor.ignore_index))
    return predictions
