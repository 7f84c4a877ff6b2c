"""Mixed precision: resolve ``auto`` to what the hardware runs fast, and build autocast."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from pixelseg.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports native bf16 support (AVX-512 BF16 or AMX) on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles for bf16 (Sapphire Rapids and later).

    Measured on an AVX-512 BF16 CPU without AMX (docs/benchmarks.md, "Precision"): bf16 autocast
    made U-Net training steps 1.5-1.8x slower and a 2048² matmul 1.9x slower than fp32, so only
    AMX makes bf16 the fast path on a CPU.
    """
    if torch.backends.cpu.get_cpu_capability() == "AMX":
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return "amx_bf16" in handle.read()
    except OSError:
        return False


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU.

    Raises:
        ConfigError: not a device name, or a CUDA device on a machine without one.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device {device!r} is not a device: use auto, cpu, cuda or cuda:N"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available on this machine")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """Map ``auto`` to the precision that is measured fastest on this hardware.

    CUDA: bf16 where supported, else fp16 (with a gradient scaler). CPU: bf16 only with AMX;
    AVX-512 BF16 alone ran slower than fp32 in our measurements, so ``auto`` is fp32 there.

    Returns:
        One of ``"fp32"``, ``"bf16"``, ``"fp16"``.

    Raises:
        ConfigError: an unknown precision, or fp16 on the CPU.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision 'fp16' is for CUDA; use bf16 or fp32 on the CPU")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() and cpu_has_amx() else "fp32"


def autocast_factory(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A zero-argument function returning the autocast context for ``precision``."""
    if precision in ("fp32", "int8"):  # int8: quantised kernels, no autocast
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)
