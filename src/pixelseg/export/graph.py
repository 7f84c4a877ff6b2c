"""What an exported file holds: the network with its normalisation, and the run's record.

The graph takes a float32 ``(N, C, H, W)`` batch in the units of
:func:`~pixelseg.data.normalize.image_to_float` (8-bit images scaled to ``[0, 1]``, other dtypes
as stored), subtracts the training mean and divides by its std inside the graph, and returns
the network's raw outputs (class logits, then the watershed's distance logit where the run has
one). ``H`` and ``W`` must be multiples of 32 (pad bottom/right with the band mean first, as
pixelseg does); batch, height and width are dynamic. The run's ``config.json`` and ``run.json``
travel in the file's metadata (:func:`export_metadata`), so the file alone is enough to predict
(:func:`pixelseg.inference.engines.load_onnx_predictor`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo, load_model, read_run
from pixelseg.errors import ConfigError
from pixelseg.inference.engines import FORMAT, META_CONFIG, META_FORMAT, META_RUN

#: Height and width of the graph's input are multiples of this.
SIZE_MULTIPLE = 32


class NormalizedNetwork(nn.Module):
    """``network`` behind the run's per-band normalisation.

    Shape:
        - image: ``(N, C, H, W)`` float32 in :func:`image_to_float` units.
        - output: ``(N, M, H, W)`` the network's raw outputs.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, network: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Normalise, then the network."""
        return self.network((image - self.mean) / self.std)


def export_metadata(config: Config, info: RunInfo) -> dict[str, str]:
    """String metadata: the format, the run's config and record (classes, palette,
    normalisation, input bands, task, model) and the pixelseg version."""
    import pixelseg

    record = info.to_dict()
    record["pixelseg_version"] = pixelseg.__version__
    return {
        META_FORMAT: FORMAT,
        META_CONFIG: json.dumps(config.to_dict()),
        META_RUN: json.dumps(record),
    }


def exported_network(
    run_dir: Path, checkpoint: str
) -> tuple[NormalizedNetwork, dict[str, str], int, int]:
    """The run's network behind its normalisation, the metadata, the band and class counts.

    Raises:
        ConfigError: a Mask R-CNN run (its ONNX export is :mod:`pixelseg.export.detector`;
            ``torch.export`` cannot capture its data-dependent detection counts).
    """
    config, info = read_run(run_dir)
    if info.task == "instance":
        raise ConfigError(
            f"{run_dir}: a Mask R-CNN run exports to ONNX only (--format onnx): torch.export "
            "cannot capture its data-dependent numbers of proposals and detections"
        )
    model = load_model(run_dir, checkpoint=checkpoint).eval()
    normalizer = info.normalizer
    network = NormalizedNetwork(model, normalizer["mean"], normalizer["std"]).eval()
    return network, export_metadata(config, info), int(info.in_channels), len(info.class_names)
