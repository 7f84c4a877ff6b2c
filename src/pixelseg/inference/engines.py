"""Engines that run an exported network in place of PyTorch's: onnxruntime.

:class:`OnnxNetwork` is an ``nn.Module`` that takes what the PyTorch network takes (a
normalised, padded ``(N, C, H, W)`` batch) and returns its raw outputs from an ONNX file written
by ``pixelseg export`` (:mod:`pixelseg.export`), whose graph holds the normalisation: the batch is
turned back into :func:`~pixelseg.data.normalize.image_to_float` units first. Every task's
padding, tiling, test-time augmentation and post-processing then run as with PyTorch.
:class:`OnnxDetector` does the same for a Mask R-CNN graph (one image per run, the detector's eval
outputs). :func:`read_run_record` reads the run's config and record that the file carries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pixelseg.config import Config
from pixelseg.engine.run_dir import RunInfo
from pixelseg.errors import CheckpointError, ConfigError

#: The metadata keys of an exported file and its format tag.
META_FORMAT, META_CONFIG, META_RUN = "pixelseg_format", "pixelseg_config", "pixelseg_run"
FORMAT = "pixelseg-export-1"
#: What a Mask R-CNN graph returns for one image, in order.
DETECTOR_OUTPUTS = ("boxes", "labels", "scores", "masks")


def onnx_session(path: Path) -> Any:
    """An onnxruntime CPU session of ``path`` (as many threads as PyTorch uses).

    Raises:
        CheckpointError: missing or not a readable ONNX model.
        ConfigError: onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError(
            "the onnxruntime engine needs onnxruntime: pip install onnxruntime"
        ) from exc
    if not path.is_file():
        raise CheckpointError(f"{path}: exported model not found (run pixelseg export first)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types for a corrupt or foreign file
        raise CheckpointError(
            f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})"
        ) from exc


def read_run_record(meta: dict[str, str], source: str) -> tuple[Config, RunInfo]:
    """The config and record in an exported file's metadata.

    Raises:
        CheckpointError: not a pixelseg export, or its metadata is corrupt.
    """
    from pixelseg.config import config_from_dict

    if meta.get(META_FORMAT) != FORMAT:
        raise CheckpointError(f"{source}: not a pixelseg export (no {META_FORMAT!r} metadata)")
    try:
        record: dict[str, Any] = json.loads(meta[META_RUN])
        record.pop("pixelseg_version", None)
        config = config_from_dict(json.loads(meta[META_CONFIG]), source=source)
        return config, RunInfo(**record)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{source}: corrupt pixelseg metadata ({exc})") from exc


class _OnnxModule(nn.Module):
    """An exported pixelseg file run by onnxruntime on the CPU; its record and normalisation.

    Raises:
        CheckpointError: missing, not ONNX, or not a pixelseg export.
        ConfigError: onnxruntime is not installed.
    """

    mean: torch.Tensor
    std: torch.Tensor
    view: tuple[int, ...] = (1, -1, 1, 1)

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.session = onnx_session(self.path)
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        self.config, self.info = read_run_record(meta, str(self.path))
        normalizer = self.info.normalizer
        self.register_buffer("mean", torch.tensor(normalizer["mean"]).view(*self.view))
        self.register_buffer("std", torch.tensor(normalizer["std"]).view(*self.view))
        # The Predictor finds the device through the parameters: this one says "the CPU".
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.input_name = self.session.get_inputs()[0].name

    def raw(self, normalised: torch.Tensor) -> Any:
        """``normalised`` back in the graph's input units, as a NumPy array."""
        return (normalised.float().cpu() * self.std + self.mean).contiguous().numpy()


class OnnxNetwork(_OnnxModule):
    """A semantic or watershed export in place of the PyTorch network: a normalised
    ``(N, C, H, W)`` batch in, the network's raw outputs out."""

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The graph's outputs for a normalised ``(N, C, H, W)`` batch."""
        (outputs, *_) = self.session.run(None, {self.input_name: self.raw(batch)})
        return torch.from_numpy(outputs)


class OnnxDetector(_OnnxModule):
    """A Mask R-CNN export (:mod:`pixelseg.export.detector`) in place of the PyTorch detector:
    a list of normalised ``(C, H, W)`` images in, its eval outputs (a dict of
    :data:`DETECTOR_OUTPUTS` per image) out."""

    view = (-1, 1, 1)

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """One graph run per image."""
        outputs = []
        for image in images:
            values = self.session.run(None, {self.input_name: self.raw(image)})
            outputs.append({name: torch.from_numpy(v) for name, v in zip(DETECTOR_OUTPUTS, values)})
        return outputs


def load_onnx_predictor(path: str | Path, *, tile: str | Any = "auto", tta: bool = False) -> Any:
    """A :class:`~pixelseg.inference.predictor.Predictor` whose network is the ONNX file at
    ``path`` (run by onnxruntime): the file alone, no run directory.

    Raises:
        CheckpointError: missing, not ONNX, or not a pixelseg export.
        ConfigError: onnxruntime is not installed.
    """
    from pixelseg.inference.fast_path import InferencePlan
    from pixelseg.inference.predictor import Predictor
    from pixelseg.tasks.registry import get_task

    network: _OnnxModule = OnnxNetwork(path)
    if network.info.task == "instance":
        network = OnnxDetector(path)
    task = get_task(network.info.task).from_run(network.config, network.info)
    predictor = Predictor(
        network, network.info, task, config=network.config, device="cpu", precision="fp32",
        tile=tile, tta=tta,
    )  # fmt: skip
    plan = InferencePlan("fp32", False, f"onnxruntime engine: {Path(path).name}")
    predictor.plan, predictor.model = plan, network
    return predictor
