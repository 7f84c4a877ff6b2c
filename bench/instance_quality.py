"""Train one instance method on DSB2018 for a fixed wall-clock budget; report it on the test split.

Usage::

    python bench/instance_quality.py --method unet_watershed --budget 1800 --seed 0 \
        --out bench/results/instance__unet-watershed__s0.json

Methods (``METHODS``): ``unet_cc`` (2-class U-Net + connected components,
``configs/dsb2018_unet_cc.toml``), ``unet_watershed`` (pixelseg's declared default,
``configs/dsb2018_unet_watershed.toml``), ``maskrcnn_align`` / ``maskrcnn_pool`` (Mask R-CNN
ResNet-18-FPN, ``configs/dsb2018_maskrcnn.toml`` with RoIAlign / RoIPool) and ``cellpose`` (the
peer, :mod:`peer_cellpose`). Every method trains on the config's train split, tunes its
thresholds on val and is reported on test, which nobody tunes on. pixelseg rows train with
:func:`pixelseg.engine.fit.fit` (the budget alone ends them: no epoch cap, no early stopping;
val picks the best checkpoint and the thresholds) and are scored by ``evaluate_run`` on test.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CONFIG_DIR, run_fields, time_steps, write_result
from pixelseg.config import Config, load_config

SCHEMA = 1
REPORT_SPLIT = "test"
BENCH_EPOCHS = 100_000
DEFAULT_BUDGET = 1800.0
DEFAULT_METHOD = "unet_watershed"
PEER_METHOD = "cellpose"

# method -> (config stem, overrides, label)
METHODS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "unet_cc": ("dsb2018_unet_cc", (), "U-Net + connected components"),
    "unet_watershed": ("dsb2018_unet_watershed", (), "U-Net + watershed (default)"),
    "maskrcnn_align": (
        "dsb2018_maskrcnn",
        ('model.options.roi_pooler="align"',),
        "Mask R-CNN R18-FPN, RoIAlign",
    ),
    "maskrcnn_pool": (
        "dsb2018_maskrcnn",
        ('model.options.roi_pooler="pool"',),
        "Mask R-CNN R18-FPN, RoIPool",
    ),
    PEER_METHOD: ("dsb2018_unet_watershed", (), "Cellpose 3 (peer, from scratch)"),
}


def bench_config(method: str, budget: float, seed: int, sets: Sequence[str] = ()) -> Config:
    """The method's config with its overrides, ``sets``, the budget and the seed applied."""
    stem, overrides, _ = METHODS[method]
    extra = [f"train.max_time={float(budget)}", f"train.seed={int(seed)}"]
    # The budget alone ends every run; val still picks the best checkpoint and the thresholds.
    extra += [f"train.epochs={BENCH_EPOCHS}"]
    return load_config(CONFIG_DIR / f"{stem}.toml", [*overrides, *sets, *extra])


def probe_job(config: Config, *, steps: int = 2) -> dict[str, Any]:
    """Time training steps of the config's job on real training crops (after a warm-up).

    The probe trains the job's own fresh model (thrown away afterwards) with AdamW, the run's
    batch and crop size and precision; loading is excluded (the batches are read first). The
    steps run with pixelseg's allocator setting (:mod:`pixelseg.engine.allocator`), as the
    run's will.
    """
    from torch.utils.data import DataLoader

    from pixelseg.engine.allocator import keep_freed_memory
    from pixelseg.engine.precision import autocast_factory, resolve_device, resolve_precision
    from pixelseg.tasks.registry import get_task

    keep_freed_memory()
    job = get_task(config.task).build_job(config, ("train",), None)
    dev = resolve_device("auto")
    autocast = autocast_factory(resolve_precision(config.train.precision, dev), dev)
    loader = DataLoader(
        job.datasets["train"],
        batch_size=config.train.batch_size,
        shuffle=True,
        collate_fn=job.collate,
        generator=torch.Generator().manual_seed(0),
    )
    batches = [batch.to(dev) for batch, _ in zip(loader, range(steps + 2))]
    model = job.model.to(dev).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.lr)

    def step(batch: Any) -> None:
        with autocast():
            loss = job.task.step(model, batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        optimizer.step()

    remaining = iter(batches)
    speed: dict[str, Any] = time_steps(
        lambda: step(next(remaining)), steps=steps, batch_size=config.train.batch_size
    )
    speed["parameters_millions"] = sum(p.numel() for p in model.parameters()) / 1e6
    return speed


def _run_pixelseg(config: Config, run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    from pixelseg.inference.evaluate import evaluate_run
    from pixelseg.train import train

    summary = train(config, run_dir).to_dict()
    metrics = evaluate_run(run_dir, split=REPORT_SPLIT, checkpoint="best", precision="fp32")
    return summary, metrics


def _headline(metrics: dict[str, Any]) -> str:
    pooled = metrics["matching_ap_pooled"]
    counting = metrics["counting"]
    coco = metrics.get("coco") or {}
    return (
        f"matching AP50 {pooled['ap50']:.4f} (mean {pooled['mean']:.4f}), COCO mask AP "
        f"{coco.get('AP', float('nan')):.4f}, count MAE {counting['count_mae']:.2f}, merges "
        f"{counting['merges']}, splits {counting['splits']}"
    )


def run_instance(
    *,
    method: str,
    budget: float,
    seed: int,
    out: str | Path | None = None,
    sets: Sequence[str] = (),
    keep_run: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Probe, train for ``budget`` seconds, tune on val, evaluate on test; write ``out``."""
    started = time.perf_counter()
    config = bench_config(method, budget, seed, sets)
    label = METHODS[method][2]
    run_dir = Path(keep_run) if keep_run else Path(tempfile.mkdtemp(prefix="pixelseg-bench-"))
    extra: dict[str, Any] = {}
    try:
        if method == PEER_METHOD:
            from peer_cellpose import run_cellpose

            run_dir.mkdir(parents=True, exist_ok=True)
            peer = run_cellpose(config, budget=budget, seed=seed, save_dir=str(run_dir), log=log)
            speed, summary, metrics = peer["probe"], peer["summary"], peer["metrics"]
            extra = {
                "flow_seconds": summary["flow_seconds"],
                "planned_epochs": summary["planned_epochs"],
                "train_images_used": summary["train_images_used"],
            }
            summary.update(best_epoch=None, precision="fp32", device="cpu")
            model_config: dict[str, Any] = {"name": "cellpose_cpnet", "diam_mean": 17.0}
            train_cfg: dict[str, Any] = {"batch_size": 8, "crop_size": 224, "optimizer": "AdamW"}
        else:
            speed = probe_job(config)
            log(
                f"[{label} / seed {seed}] probe: {speed['steps_per_second']:.3f} steps/s, "
                f"{speed['images_per_second']:.2f} crops/s -> about "
                f"{speed['images_per_second'] * budget:.0f} training crops in {budget:g} s, "
                "less the time spent validating"
            )
            summary, metrics = _run_pixelseg(config, run_dir)
            import json

            run_info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
            model_config = run_info["model"]
            train_cfg = config.to_dict()["train"]
    finally:
        if not keep_run:
            shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "schema": SCHEMA,
        "group": "instance",
        "label": label,
        "method": method,
        "default": method == DEFAULT_METHOD,
        "peer": method == PEER_METHOD,
        "dataset": "dsb2018",
        "model_config": model_config,
        "train": train_cfg,
        "options": list(sets),
        "budget_s": float(budget),
        "seed": int(seed),
        "split": REPORT_SPLIT,
        **extra,
        **run_fields(summary, metrics, speed, started=started),
    }
    log(
        f"[{label} / seed {seed}] {result['steps']} steps, {result['images_seen']} images in "
        f"{result['train_seconds']:.0f} s; test: {_headline(metrics)}"
    )
    if out is not None:
        write_result(out, result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default=DEFAULT_METHOD, choices=sorted(METHODS))
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="training seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="result JSON path (e.g. bench/results/NAME.json)")
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="config override for pixelseg methods (repeatable)",
    )  # fmt: skip
    parser.add_argument("--keep-run", help="keep the run directory here")
    args = parser.parse_args(argv)
    if args.method == PEER_METHOD:
        try:
            import cellpose  # noqa: F401
        except ImportError:
            parser.error("the peer needs cellpose: pip install -e '.[bench]'")
    run_instance(
        method=args.method,
        budget=args.budget,
        seed=args.seed,
        out=args.out,
        sets=args.sets,
        keep_run=args.keep_run,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
