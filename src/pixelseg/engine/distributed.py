"""PyTorch DDP under ``torchrun``: the process group, who writes, and what the ranks agree on.

``torchrun --nproc-per-node N -m pixelseg train CONFIG`` starts N processes with ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE`` and the rendezvous address in their environment;
:func:`init_from_environment` joins them into one process group (``nccl`` on CUDA, ``gloo`` on
the CPU). Only rank 0 writes files and prints (:mod:`pixelseg.engine.writer`,
:mod:`pixelseg.engine.console`). Every decision that starts or skips a collective (validate
now? out of time? stop?) goes through :func:`any_rank`, so the ranks never part ways; a
collective that waits longer than the group's timeout — a rank died or hangs — raises instead
of hanging, and ``torchrun`` stops the other ranks when one exits.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from pixelseg.metrics.confusion import all_reduce_sum


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


def launched_by_torchrun() -> bool:
    """True when the environment names more than one process (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_environment(device: torch.device, *, timeout_s: float = 300.0) -> bool:
    """Join ``torchrun``'s process group when launched by it; True when distributed.

    The backend follows the device: ``nccl`` for CUDA (each process on GPU ``LOCAL_RANK``),
    ``gloo`` otherwise. A collective waiting more than ``timeout_s`` fails.
    """
    if is_distributed() or not launched_by_torchrun():
        return is_distributed()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_device(device))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return True


def local_device(device: torch.device) -> torch.device:
    """``device``, on this process's own GPU (``LOCAL_RANK``) for CUDA."""
    if device.type != "cuda" or not launched_by_torchrun():
        return device
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    """Leave the process group (a no-op without one), every rank together, so that no rank
    tears its group down while rank 0 still writes (the CLI then skips the interpreter's
    teardown under torchrun: see :func:`pixelseg.cli.main`)."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (a no-op without DDP)."""
    if is_distributed():
        dist.barrier()


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is True on any (``flag`` itself without DDP)."""
    return sum_over_ranks([1.0 if flag else 0.0])[0] > 0


def sum_over_ranks(values: list[float]) -> list[float]:
    """``values`` summed element-wise over the ranks (unchanged without DDP)."""
    if not is_distributed():
        return list(values)
    return all_reduce_sum(torch.tensor(values, dtype=torch.float64)).tolist()


def shard(items: list[Any]) -> list[Any]:
    """This rank's share of ``items``: every ``world``-th from its rank (nothing repeated)."""
    return items[get_rank() :: get_world_size()] if is_distributed() else list(items)
