"""int8 post-training quantisation of a dense model (``torch.ao``, x86 backend), calibrated.

The model is traced by ``torch.fx`` (FX graph mode), observers are inserted by
``get_default_qconfig_mapping("x86")`` (per-channel weights, histogram activations), a few
calibration batches run through it, and ``convert_fx`` turns convolutions, linears and ReLUs
into quantised kernels (fbgemm/oneDNN on x86); BatchNorm is folded in, GroupNorm and the
up-sampling stay in float between quantise/dequantise steps. The quantised model takes and
returns float tensors like the original, on the CPU. Calibration images should be training
images (:func:`calibration_batches`); a model that torch.fx cannot trace is not quantised.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

#: Training images the calibration reads (each as one crop of at most CALIBRATION_SIZE px).
CALIBRATION_IMAGES = 8
CALIBRATION_SIZE = 256


def quantize_int8(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module | None:
    """An int8 copy of ``model`` calibrated on ``batches`` (normalised ``(N, C, H, W)``, CPU),
    or ``None`` when it cannot be traced or the x86 quantised engine is missing."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if "x86" not in torch.backends.quantized.supported_engines:
        return None
    torch.backends.quantized.engine = "x86"
    batches = list(batches)
    if not batches:
        return None
    float_model = copy.deepcopy(model).float().cpu().eval()
    float_model = float_model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notes for FX graph mode
        try:
            prepared = prepare_fx(
                float_model, get_default_qconfig_mapping("x86"), example_inputs=(batches[0],)
            )
            with torch.no_grad():
                for batch in batches:
                    prepared(batch)
            quantized: nn.Module = convert_fx(prepared)
        except Exception:  # data-dependent control flow: torch.fx cannot trace it
            return None
    return Int8Model(quantized).eval()


class Int8Model(nn.Module):
    """A quantised graph with one (unused) float parameter: the Predictor finds the device
    through the parameters, and packed int8 weights are not parameters."""

    def __init__(self, quantized: nn.Module) -> None:
        super().__init__()
        self.quantized = quantized
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The quantised model's float outputs for a float (contiguous) batch."""
        return self.quantized(batch.contiguous())


def calibration_batches(dataset: Any, *, count: int = CALIBRATION_IMAGES) -> list[torch.Tensor]:
    """Up to ``count`` images of ``dataset`` (evenly spread over it), each cropped to at most
    :data:`CALIBRATION_SIZE` px and padded to a multiple of 32, as ``(1, C, h, w)`` batches."""
    total = len(dataset)
    if total == 0:
        return []
    picks = sorted({round(k * (total - 1) / max(1, count - 1)) for k in range(min(count, total))})
    batches = []
    for index in picks:
        image = dataset[index].image[:, :CALIBRATION_SIZE, :CALIBRATION_SIZE].float()
        height, width = image.shape[-2:]
        padded = torch.zeros(image.shape[0], -(-height // 32) * 32, -(-width // 32) * 32)
        padded[:, :height, :width] = image
        batches.append(padded[None])
    return batches


def training_calibration(config: Any, info: Any) -> list[torch.Tensor]:
    """:func:`calibration_batches` of the run's training split without augmentation (the same
    batches, hence the same int8 model, every time), or ``[]`` where its data folder is not
    here (a moved run)."""
    from pathlib import Path

    from pixelseg.tasks.registry import get_task

    if config is None or not Path(config.data.root).is_dir():
        return []
    # Unaugmented (whole images, padded): the same crops every time, so the same int8 model.
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, augment=False))
    try:
        datasets = get_task(info.task).build_datasets(config, ("train",), info)
    except Exception:  # the data changed since training: the caller calibrates otherwise
        return []
    return calibration_batches(datasets["train"])


def auto_int8(predictor: Any) -> nn.Module | None:
    """The int8 candidate of ``precision = "auto"``: the predictor's model quantised on the
    run's training images, or ``None`` off the CPU, where the training data is not here (a
    calibration on the image being measured would grade itself) or it cannot be quantised."""
    if predictor.device.type != "cpu" or not predictor.task.dense_output:
        return None
    batches = training_calibration(predictor.config, predictor.info)
    if not batches:
        return None
    return quantize_int8(getattr(predictor.model, "_pixelseg_base", predictor.model), batches)


def int8_plan(model: nn.Module, image: torch.Tensor, *, predictor: Any) -> tuple[Any, nn.Module]:
    """The int8 plan of a dense model and the quantised model, calibrated on the run's
    training images (else on crops of ``image``, the first one predicted); fp32 where int8
    cannot run (CUDA, an untraceable model), with the reason.

    Raises:
        ConfigError: on CUDA (the x86 int8 kernels run on the CPU).
    """
    from pixelseg.errors import ConfigError
    from pixelseg.inference.fast_path import InferencePlan, prepare_model

    config, info, device = predictor.config, predictor.info, predictor.device
    if device.type != "cpu":
        raise ConfigError("precision 'int8' runs on the CPU (torch.ao's x86 kernels); use bf16")
    batches = training_calibration(config, info)
    source = f"{len(batches)} training images"
    if not batches:
        batches = calibration_batches([_Item(image)])
        source = "the first image predicted (the run's training data is not here)"
    quantized = quantize_int8(getattr(model, "_pixelseg_base", model), batches)
    if quantized is None:
        plan = InferencePlan("fp32", True, "given: int8, but torch.fx cannot trace this model")
        return plan, prepare_model(model, plan)
    reason = f"given: int8 (torch.ao x86, calibrated on {source})"
    return InferencePlan("int8", False, reason), quantized


class _Item:
    """A dataset item holding one image (for :func:`calibration_batches`)."""

    def __init__(self, image: torch.Tensor) -> None:
        self.image = image

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> _Item:
        return self
