"""Run by tests/engine/test_engine_distributed.py, under torchrun or alone.

``ddp_worker.py evaluate RUN OUT``: validate RUN's best checkpoint on its val split as training
does (each rank its shard under torchrun) and write the metrics, with each rank's image count,
to OUT (rank 0).
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist

from pixelseg.engine import run_dir as rd
from pixelseg.engine.checkpoint import load_checkpoint
from pixelseg.engine.ddp import val_indices
from pixelseg.engine.distributed import (
    init_from_environment,
    is_distributed,
    is_main_process,
    shutdown,
)
from pixelseg.engine.loop import evaluate
from pixelseg.engine.training import validation_loader
from pixelseg.tasks.registry import get_task


def _evaluate(run: Path, out: Path) -> None:
    device = torch.device("cpu")
    init_from_environment(device, timeout_s=120)
    config, info = rd.read_run(run)
    job = get_task(config.task).build_job(config, ("train", "val"), info)
    load_checkpoint(run / rd.BEST, job.model)
    loader = validation_loader(job, len(job.datasets["val"]), 1)
    indices = val_indices(loader)
    result = evaluate(
        job.model, job.task, loader, autocast=nullcontext, device=device, indices=indices
    )
    sizes: list[int] = [len(indices)]
    if is_distributed():
        gathered: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, len(indices))
        sizes = [int(n) for n in gathered]  # type: ignore[call-overload]
    if is_main_process():
        keep = ("confusion_matrix", "miou", "matching_ap50", "count_mae", "loss", "num_images")
        record = {k: result[k] for k in keep if k in result}
        out.write_text(json.dumps({**record, "shard_sizes": sizes}), encoding="utf-8")
    shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "evaluate":
        _evaluate(Path(sys.argv[2]), Path(sys.argv[3]))
        if is_distributed() or "LOCAL_RANK" in os.environ:  # as the CLI does under torchrun
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
