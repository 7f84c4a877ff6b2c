"""Class weights for cross-entropy, computed from per-class pixel counts.

* ``median`` (median-frequency balancing, Eigen & Fergus 2015, used by SegNet on CamVid):
  ``w_c = median(f) / f_c`` with ``f_c`` the pixel frequency of class ``c``;
* ``inverse``: ``w_c = 1 / f_c``.

Weights are normalised to mean 1 over the classes that occur, then clipped to ``[0.1, 10]`` so a
class of a handful of pixels cannot dominate the loss. Absent classes get weight 1 (they contribute
no target pixels; the value only matters if they appear later).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pixelseg.errors import ConfigError

WEIGHT_METHODS = ("median", "inverse")
MIN_WEIGHT = 0.1
MAX_WEIGHT = 10.0


def class_weights_from_counts(
    counts: Sequence[int] | np.ndarray | torch.Tensor, *, method: str = "median"
) -> torch.Tensor:
    """Per-class loss weights from pixel counts.

    Args:
        counts: ``(num_classes,)`` labelled pixels per class (void excluded).
        method: ``"median"`` (median frequency) or ``"inverse"`` (inverse frequency).

    Returns:
        ``(num_classes,)`` float32 weights, mean 1 over present classes, clipped to [0.1, 10].

    Raises:
        ConfigError: an unknown method, negative counts, or no labelled pixel at all.
    """
    if method not in WEIGHT_METHODS:
        raise ConfigError(f"class weighting {method!r} is not one of {', '.join(WEIGHT_METHODS)}")
    if isinstance(counts, torch.Tensor):
        counts = counts.detach().cpu().numpy()
    values = np.asarray(counts, dtype=np.float64).reshape(-1)
    if (values < 0).any():
        raise ConfigError(f"class pixel counts must be non-negative, got {values.tolist()}")
    total = values.sum()
    if total <= 0:
        raise ConfigError("no labelled pixels: cannot compute class weights")
    present = values > 0
    freq = values[present] / total
    raw = np.median(freq) / freq if method == "median" else 1.0 / freq
    raw = raw / raw.mean()
    weights = np.ones_like(values)
    weights[present] = np.clip(raw, MIN_WEIGHT, MAX_WEIGHT)
    return torch.as_tensor(weights, dtype=torch.float32)
