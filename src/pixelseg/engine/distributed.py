"""Rank helpers for ``torchrun`` (PyTorch DDP): who writes, who prints."""

from __future__ import annotations

import os

import torch.distributed as dist


def is_distributed() -> bool:
    """True when a process group is initialised (launched by ``torchrun``)."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """This process's global rank (0 when not distributed)."""
    if is_distributed():
        return int(dist.get_rank())
    return int(os.environ.get("RANK", "0"))


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return int(dist.get_world_size()) if is_distributed() else 1


def is_main_process() -> bool:
    """Only rank 0 writes files and prints progress."""
    return get_rank() == 0
