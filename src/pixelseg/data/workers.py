"""DataLoader worker processes: how many (``train.num_workers = "auto"``), and their options.

Measured on a 2-core AMD EPYC (Zen 4), the default model (``unet_resnet18``, GroupNorm), batch
4, 256 px crops, torch's default 2 threads in the main process, 20 steps after 3 of warm-up,
with the sample cache of :mod:`pixelseg.data.cache` (training data then costs 5.5 ms per
DRIVE sample and 5.0 ms per DSB2018 watershed sample on one thread):

=========================  =========================  ====================================
workers                    DRIVE steps/s (ms/step)    DSB2018 watershed steps/s (ms/step)
=========================  =========================  ====================================
0 (data in the main)       1.711 (585)                1.616 (619)
1                          1.564 (639)                1.476 (678)
2                          1.540 (650)                1.416 (706)
=========================  =========================  ====================================

With 0 workers the main process waited 16 ms per step for DRIVE data and 62 ms for DSB2018's
(its first crops of each image also compute that image's watershed targets), yet a worker costs
more than it saves: every core already runs one of the model's intra-op threads, and a worker
taking one stalls the whole operation until it returns (9 to 13 % slower steps here). Hence
``"auto"``: no worker on machines of up to 4 cores when training on the CPU, one worker above
that (it takes at most an eighth of the cores and the data off the step); with a CUDA device the
CPU only feeds the GPU, so ``min(4, cores - 1)`` workers (not measured here: no GPU).

Workers are persistent (one start for the run, the cache they inherited kept) with torch's
default prefetch of 2 batches each (more only holds memory: a batch takes 20 ms to make against
a 600 ms step); on Linux they are forked, so a cache filled before they start is shared
copy-on-write rather than pickled (see :mod:`pixelseg.data.cache`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch

#: Training on the CPU, machines up to this many cores get no worker.
CPU_ONLY_MAX_CORES_WITHOUT_WORKERS = 4
#: At most this many workers feed a GPU.
MAX_GPU_WORKERS = 4


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else the count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_num_workers(value: int | str, *, cuda: bool | None = None) -> int:
    """``train.num_workers``: the number given, or ``"auto"`` (see the module docstring).

    Args:
        value: a number of workers or ``"auto"``.
        cuda: the training runs on a CUDA device (default: one is available).

    Raises:
        ValueError: a string other than ``"auto"``.
    """
    if not isinstance(value, str):
        return max(0, int(value))
    if value != "auto":
        raise ValueError(f"train.num_workers: {value!r} is not a number or 'auto'")
    cores = usable_cores()
    if cuda is None:
        cuda = torch.cuda.is_available()
    if cuda:
        return max(0, min(MAX_GPU_WORKERS, cores - 1))
    return 0 if cores <= CPU_ONLY_MAX_CORES_WITHOUT_WORKERS else 1


def loader_options(num_workers: int) -> dict[str, Any]:
    """``DataLoader`` keyword arguments for ``num_workers`` worker processes.

    No worker: ``{"num_workers": 0}``. Otherwise persistent workers with a prefetch of 2 batches
    each, forked on Linux (so they share the sample cache copy-on-write).
    """
    if num_workers <= 0:
        return {"num_workers": 0}
    options: dict[str, Any] = {
        "num_workers": num_workers,
        "persistent_workers": True,
        "prefetch_factor": 2,
    }
    if sys.platform.startswith("linux"):
        options["multiprocessing_context"] = "fork"
    return options
