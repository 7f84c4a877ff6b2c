"""Nothing predicted on nodata pixels: a prediction with them left out, for every task."""

from __future__ import annotations

import numpy as np
import torch

from pixelseg.structures import InstancePrediction, Prediction, SemanticPrediction


def without_nodata(
    prediction: Prediction, nodata: np.ndarray | None, ignore_index: int
) -> Prediction:
    """``prediction`` with nothing predicted on the ``(H, W)`` nodata pixels.

    Semantic: the label map holds ``ignore_index`` there (the probabilities are kept).
    Instances: the objects lose their nodata pixels (those left empty are dropped, the others
    renumbered ``1..N`` in order, their boxes recomputed).
    """
    if nodata is None or not nodata.any():
        return prediction
    if isinstance(prediction, SemanticPrediction):
        label_map = prediction.label_map.clone()
        label_map[torch.from_numpy(nodata)] = ignore_index
        return SemanticPrediction(probs=prediction.probs, label_map=label_map)
    assert isinstance(prediction, InstancePrediction)
    from pixelseg.postprocess.masks import instance_prediction, relabel_sequential

    labels = prediction.label_image.copy()
    labels[nodata] = 0
    kept = np.unique(labels[labels > 0]).astype(np.int64) - 1
    return instance_prediction(
        relabel_sequential(labels),
        prediction.scores[kept],
        prediction.labels[kept],
        detections=prediction.detections,
        class_probs=prediction.class_probs,
    )
