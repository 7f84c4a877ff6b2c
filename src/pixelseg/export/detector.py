"""``pixelseg export --format onnx`` of a Mask R-CNN run: the whole detector as one ONNX graph.

The graph takes one ``(C, H, W)`` float32 image in
:func:`~pixelseg.data.normalize.image_to_float` units (any height and width: the detector pads
to a multiple of 32 itself), normalises it, and returns what the PyTorch model returns in eval:
``boxes`` ``(K, 4)``, ``labels`` ``(K,)``, ``scores`` ``(K,)`` and ``masks`` ``(K, 1, H, W)``
probabilities pasted at the image size — backbone, FPN, RPN with its NMS, RoIAlign, the box
and mask heads and torchvision's post-processing, through torchvision's ONNX support, which is
written for PyTorch's TorchScript-based exporter (``dynamo=False``; the dynamo exporter cannot
capture the data-dependent proposal and detection counts). What stays in Python: one image per
call (no batch axis), and the run's score and mask thresholds that make the label image
(:func:`~pixelseg.tasks.instance.outputs.detections_prediction`). ``torch.export`` is refused.

Every export is checked against PyTorch on two image sizes
(:func:`check_detector_parity`): the same number of detections, the largest difference of boxes,
scores and mask probabilities, and the share of pixels whose object in the label image agrees;
below :data:`~pixelseg.export.parity.MIN_AGREEMENT` the export fails and no file is left.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pixelseg.engine.run_dir import load_model, read_run
from pixelseg.errors import ConfigError
from pixelseg.export.graph import export_metadata
from pixelseg.export.parity import MIN_AGREEMENT, ParityReport, example_input
from pixelseg.files import atomic_write
from pixelseg.inference.engines import DETECTOR_OUTPUTS as OUTPUTS
from pixelseg.inference.engines import onnx_session

#: The ONNX opset of detector graphs (torchvision's RoIAlign and NMS symbolics).
DETECTOR_OPSET = 17
#: ``(height, width)`` of the two checked images.
DETECTOR_SIZES = ((64, 96), (96, 64))


class NormalizedDetector(nn.Module):
    """A Mask R-CNN behind the run's per-band normalisation, one image in, four tensors out."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, detector: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.detector = detector
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(boxes, labels, scores, masks)`` of one raw-unit ``(C, H, W)`` image."""
        (output,) = self.detector([(image - self.mean) / self.std])
        return tuple(output[name] for name in OUTPUTS)


def _label_image(outputs: Any, task: Any) -> Any:
    from pixelseg.tasks.instance.outputs import Detections

    _, labels, scores, masks = (torch.as_tensor(np.asarray(o)) for o in outputs)
    detections = Detections.from_output({"masks": masks, "scores": scores, "labels": labels})
    return task.make_metrics().prediction(detections).label_image


def check_detector_parity(
    network: NormalizedDetector, session: Any, task: Any, bands: int
) -> ParityReport:
    """Run both on :data:`DETECTOR_SIZES` images (the training mean plus noise of its std).

    Raises:
        ConfigError: a different number of detections, or label-image agreement below
            :data:`~pixelseg.export.parity.MIN_AGREEMENT`.
    """
    worst, same, total = 0.0, 0, 0
    for height, width in DETECTOR_SIZES:
        image = example_input(network, bands, (1, height, width))[0]
        with torch.no_grad():
            expected = network(image)
        got = session.run(None, {"image": image.numpy()})
        if got[0].shape[0] != expected[0].shape[0]:
            raise ConfigError(
                f"export failed the parity check: ONNX found {got[0].shape[0]} detections on "
                f"a {height}x{width} image, PyTorch {expected[0].shape[0]}"
            )
        for mine, theirs in zip(expected, got):
            if mine.numel():
                difference = (mine.float() - torch.from_numpy(theirs).float()).abs().max()
                worst = max(worst, float(difference))
        labels_torch, labels_onnx = _label_image(expected, task), _label_image(got, task)
        same += int((labels_torch == labels_onnx).sum())
        total += labels_torch.size
    what = f"ONNX Mask R-CNN (opset {DETECTOR_OPSET})"
    sizes = tuple((1, h, w) for h, w in DETECTOR_SIZES)
    report = ParityReport(what, worst, same / total, sizes, agreement_of="label-image")
    if report.agreement < MIN_AGREEMENT:
        raise ConfigError(f"export failed the parity check: {report.line()}")
    return report


def export_detector_onnx(
    run_dir: Path, out: Path, *, checkpoint: str = "best", opset: int = DETECTOR_OPSET
) -> ParityReport:
    """Export a Mask R-CNN run's ``checkpoint`` to the ONNX file ``out`` and check it.

    Raises:
        ConfigError: outputs that disagree with PyTorch's (no file is written then).
    """
    from pixelseg.export.onnx import add_metadata
    from pixelseg.tasks.registry import get_task

    config, info = read_run(run_dir)
    detector = load_model(run_dir, checkpoint=checkpoint).eval()
    network = NormalizedDetector(detector, info.normalizer["mean"], info.normalizer["std"])
    network.eval()
    bands = int(info.in_channels)
    example = example_input(network, bands, (1, 64, 96))[0]
    dynamic = {"image": [1, 2], "boxes": [0], "labels": [0], "scores": [0], "masks": [0, 2, 3]}

    def write(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on torchvision's shape code
            torch.onnx.export(
                network, (example,), str(tmp), dynamo=False, opset_version=opset,
                input_names=["image"], output_names=list(OUTPUTS), dynamic_axes=dynamic,
            )  # fmt: skip
        add_metadata(tmp, export_metadata(config, info))

    staged = out.with_name(f".{out.name}.staged")
    atomic_write(staged, write)
    try:
        task = get_task(info.task).from_run(config, info)
        report = check_detector_parity(network, onnx_session(staged), task, bands)
        staged.replace(out)
    finally:
        staged.unlink(missing_ok=True)
    return report
