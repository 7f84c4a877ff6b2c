"""Mixed precision: resolve ``auto`` to what the hardware runs fast, and build autocast."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch


def cpu_has_native_bf16() -> bool:
    """True when oneDNN reports native bf16 support (AVX-512 BF16 or AMX) on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Map ``auto`` to ``bf16`` on CPUs with native bf16 and CUDA GPUs that support it.

    Returns:
        One of ``"fp32"``, ``"bf16"``, ``"fp16"``.
    """
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ValueError("fp16 autocast is for CUDA; use bf16 on the CPU")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast_factory(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A zero-argument function returning the autocast context for ``precision``."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)
