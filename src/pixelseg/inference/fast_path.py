"""How the Predictor runs its model: memory format and precision, measured on this machine.

Inference has no backward pass, so the training finding (bf16 autocast slower than fp32 on a
CPU without AMX) does not carry over unmeasured. With ``precision = "auto"`` a dense task's
Predictor measures, on the first image it predicts (a crop of at most :data:`PROBE_SIZE` px),
fp32 in the contiguous layout, fp32 channels_last and — where the hardware has native bf16 —
bf16 autocast channels_last, each also with its BatchNorms folded into the convolutions where
the model has any (the shipped configs' GroupNorm models have none), and on a CPU int8
(:mod:`pixelseg.inference.quantize`) where the run's training images are here to calibrate
it; it keeps the fastest
whose label map equals fp32's in at least :data:`MIN_AGREEMENT` of the pixels (and is at
least :data:`MIN_SPEEDUP` faster than the one before it, so timing noise does not flip the
choice). A task whose output is a set of objects
(Mask R-CNN) runs fp32 as stored: its outputs cannot be compared pixel by pixel as cheaply.
An explicit precision is used as given, channels_last for dense tasks. The measured plan is
kept in the run directory (``inference_plans.json``, keyed by device, CPU model and PyTorch
version; :mod:`pixelseg.inference.plans`), so later predictions on the same machine reuse it
and give the same labels.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from pixelseg.engine.padding import class_argmax
from pixelseg.engine.precision import autocast_factory, cpu_has_native_bf16
from pixelseg.engine.task import Task

#: The measurement crop's largest side in px.
PROBE_SIZE = 384
#: Pixels whose label must equal fp32's for a faster path to be chosen.
MIN_AGREEMENT = 0.995
#: How much faster than the default a path must be to replace it.
MIN_SPEEDUP = 1.1


@dataclass(frozen=True)
class InferencePlan:
    """What the model runs in.

    Attributes:
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        channels_last: model and inputs in the NHWC memory layout.
        reason: one line: how it was chosen (measured speed and agreement, or given).
        folded: each BatchNorm folded into the convolution before it (:func:`fold_batch_norm`).
        compiled: run through ``torch.compile`` (:class:`Compiled`; asked for, never measured).
    """

    precision: str
    channels_last: bool
    reason: str
    folded: bool = False
    compiled: bool = False

    @property
    def name(self) -> str:
        """e.g. ``bf16+channels_last``."""
        layout = "+channels_last" if self.channels_last else ""
        extras = ("+bn_folded" if self.folded else "") + ("+compiled" if self.compiled else "")
        return self.precision + layout + extras


def fold_batch_norm(model: nn.Module) -> nn.Module | None:
    """A copy of ``model`` with each BatchNorm folded into its convolution (``torch.fx``), or
    ``None`` when it has no BatchNorm (GroupNorm cannot be folded) or cannot be traced."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return None
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(copy.deepcopy(model).eval())
    except Exception:  # data-dependent control flow: torch.fx cannot trace it
        return None


class ChannelsLast(nn.Module):
    """``module`` fed its 4-D inputs in the channels_last layout (weights converted once)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The wrapped module's output for ``batch`` in the channels_last layout."""
        return self.module(batch.contiguous(memory_format=torch.channels_last))


class Compiled(nn.Module):
    """``module`` through ``torch.compile`` (inductor: fused kernels, C++ on a CPU).

    The first call compiles (tens of seconds; each new input shape again, until shapes are
    marked dynamic), so it pays on many images or tiles of one size. Where compiling fails (no
    C++ compiler, an unsupported operation) it warns once and runs ``module`` eagerly.
    """

    _compiled: Callable[[torch.Tensor], torch.Tensor]

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        object.__setattr__(self, "_compiled", torch.compile(module))
        #: Why compiling failed, or ``None``.
        self.failure: str | None = None

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The compiled module's output for ``batch`` (the eager one's where it failed)."""
        if self.failure is None:
            try:
                return self._compiled(batch)
            except Exception as error:  # inductor's errors have no common base class
                self.failure = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                message = f"torch.compile failed, running eagerly ({self.failure})"
                warnings.warn(message, stacklevel=2)
        return self.module(batch)  # type: ignore[no-any-return]


#: Where a prepared model keeps the model it was made from (not a registered submodule).
_BASE = "_pixelseg_base"


def prepare_model(model: nn.Module, plan: InferencePlan) -> nn.Module:
    """The model ``model`` was prepared from (or ``model``) laid out for ``plan``."""
    base: nn.Module = getattr(model, _BASE, model)
    laid = (fold_batch_norm(base) if plan.folded else None) or base
    layout = torch.channels_last if plan.channels_last else torch.contiguous_format
    laid = laid.to(memory_format=layout)  # type: ignore[call-overload]
    prepared = ChannelsLast(laid) if plan.channels_last else laid
    if prepared is not base:
        object.__setattr__(prepared, _BASE, base)
    return prepared.eval()


def _labels(
    task: Task,
    model: nn.Module,
    batch: torch.Tensor,
    precision: str,
    classes: int,
    clock: Callable[[], float],
) -> tuple[float, torch.Tensor]:
    device = next(model.parameters()).device
    autocast = autocast_factory(precision, device)
    forward = task.dense_forward
    forward(model, batch, autocast=autocast)  # warm-up: oneDNN picks and caches its kernels
    best = float("inf")
    maps = None
    for _ in range(2):
        start = clock()
        maps = forward(model, batch, autocast=autocast)
        best = min(best, clock() - start)
    assert maps is not None
    return best, class_argmax(maps[:, :classes], 1)


def measure_plan(
    task: Task,
    model: nn.Module,
    image: torch.Tensor,
    *,
    classes: int,
    device: torch.device,
    native_bf16: Callable[[], bool] = cpu_has_native_bf16,
    int8: Callable[[], nn.Module | None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[InferencePlan, nn.Module]:
    """The fastest plan for ``task``'s ``model`` on a crop of a normalised ``(C, H, W)``
    ``image`` whose labels agree with fp32's, and the model laid out for it.

    Args:
        classes: the class channels of the task's maps (the label map is their argmax).
        native_bf16: whether bf16 is worth trying on the CPU (CUDA: when it is supported).
        int8: on the CPU, makes the int8 candidate (:mod:`pixelseg.inference.quantize`,
            calibrated on training images; ``None`` where it cannot be made).
        clock: seconds (tests pass a fake one).
    """
    crop = image[:, :PROBE_SIZE, :PROBE_SIZE][None]
    bf16 = torch.cuda.is_bf16_supported() if device.type == "cuda" else native_bf16()
    foldable = fold_batch_norm(getattr(model, _BASE, model)) is not None
    candidates = [
        InferencePlan(precision, channels_last, "", folded)
        for precision, channels_last in [("fp32", False), ("fp32", True), ("bf16", True)]
        for folded in (False, True)
        if (precision == "fp32" or bf16) and (not folded or (foldable and channels_last))
    ]
    quantized = int8() if int8 is not None and device.type == "cpu" else None
    if quantized is not None:
        candidates.append(InferencePlan("int8", False, ""))
    timings: list[tuple[float, float, InferencePlan]] = []
    reference: torch.Tensor | None = None
    for candidate in candidates:
        laid_out = quantized if candidate.precision == "int8" else prepare_model(model, candidate)
        assert laid_out is not None
        seconds, labels = _labels(task, laid_out, crop, candidate.precision, classes, clock)
        if reference is None:
            reference = labels
        agreement = float((labels == reference).float().mean())
        timings.append((seconds, agreement, candidate))
    baseline, chosen = timings[0][0], timings[0]
    for entry in timings[1:]:
        if entry[1] >= MIN_AGREEMENT and entry[0] * MIN_SPEEDUP <= chosen[0]:
            chosen = entry
    measured = ", ".join(
        f"{c.name} {baseline / max(s, 1e-9):.2f}x ({a:.1%} agree)" for s, a, c in timings
    )
    reason = (
        f"auto: measured on a {crop.shape[-2]}x{crop.shape[-1]} crop of the first image "
        f"against fp32: {measured}"
    )
    plan = dataclasses.replace(chosen[2], reason=reason)
    if plan.precision == "int8" and quantized is not None:
        return plan, quantized
    return plan, prepare_model(model, plan)


def given_plan(precision: str, *, dense: bool, asked: str) -> InferencePlan:
    """The plan for a resolved ``precision`` that is not measured: channels_last for a dense
    task; ``asked`` is what the user gave (``auto`` for an objects task)."""
    if asked == "auto":
        reason = f"auto: {precision} (objects are not compared pixel by pixel; not measured)"
    else:
        reason = f"given: precision {precision}"
    return InferencePlan(precision, dense, reason)
