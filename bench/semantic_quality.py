"""Train one model on one dataset for a fixed wall-clock budget, evaluate it, write a result JSON.

Usage::

    python bench/semantic_quality.py --dataset isbi2012 --model pixelseg --budget 600 --seed 0 \
        --out bench/results/isbi2012__pixelseg__s0.json

``--model pixelseg`` is the config's declared default (``configs/<dataset>.toml``);
``--model smp_unet_resnet34`` the peer (:mod:`peer_smp`); any other name is a pixelseg registry
model put in the config's ``model.name`` (its ``model.options`` stay, ``--set`` adds more).
pixelseg rows train with :func:`pixelseg.engine.fit.fit` and are evaluated with
:func:`pixelseg.inference.evaluate.evaluate_run` on the config's ``val`` split; the peer is
evaluated by the same semantic task's ``evaluate`` and Predictor.
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
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CONFIG_DIR,
    DATASETS,
    PEER_MODEL,
    probe_train_speed,
    run_fields,
    write_result,
)
from pixelseg.config import Config, load_config
from pixelseg.data.folder import MaskFolderDataset

SCHEMA = 1
SPLIT = "val"


BENCH_EPOCHS = 100_000


def bench_config(dataset: str, model: str, sets: Sequence[str], budget: float, seed: int) -> Config:
    """The dataset's config with the model, ``--set`` overrides, budget and seed applied."""
    overrides = []
    if model not in ("pixelseg", PEER_MODEL):
        overrides.append(f'model.name="{model}"')
    overrides += list(sets)
    overrides += [f"train.max_time={float(budget)}", f"train.seed={int(seed)}"]
    # The budget alone ends every run (no epoch cap, no early stopping on the reported split).
    overrides += [f"train.epochs={BENCH_EPOCHS}", f"train.patience={BENCH_EPOCHS}"]
    return load_config(CONFIG_DIR / f"{dataset}.toml", overrides)


def probe(config: Config, model: str, *, steps: int) -> dict[str, Any]:
    """Training speed of the row's network on a synthetic batch (see ``probe_train_speed``)."""
    from pixelseg.models.registry import create_model

    data = MaskFolderDataset(config.data)
    in_channels, num_classes = data.in_channels, data.num_classes
    torch.manual_seed(0)
    network: nn.Module
    if model == PEER_MODEL:
        from peer_smp import build_peer_model

        network = build_peer_model(in_channels=in_channels, num_classes=num_classes)
    else:
        network = create_model(
            config.model.name,
            num_classes=num_classes,
            in_channels=in_channels,
            **config.model.options,
        )
    # The same plain CE for every probe: it times the network, not the loss.
    loss_fn = nn.CrossEntropyLoss()
    speed = probe_train_speed(
        network, loss_fn, config, in_channels=in_channels, num_classes=num_classes, steps=steps
    )
    speed["parameters_millions"] = sum(p.numel() for p in network.parameters()) / 1e6
    speed["expected_images"] = speed["images_per_second"] * float(config.train.max_time or 0)
    return speed


def _train_pixelseg(config: Config, run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    from pixelseg.inference.evaluate import evaluate_run
    from pixelseg.train import train

    summary = train(config, run_dir).to_dict()
    metrics = evaluate_run(run_dir, split=SPLIT, checkpoint="last")
    run_info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    summary["loss"] = run_info["loss"]
    summary["model_config"] = run_info["model"]
    return summary, metrics


def _train_peer(
    config: Config, log: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    from peer_smp import train_peer
    from pixelseg.inference.predictor import Predictor
    from pixelseg.tasks.registry import get_task

    run = train_peer(config, log=log)
    task = get_task("semantic").from_run(config, run.info)
    predictor = Predictor(
        run.model, run.info, task, config=config, precision=config.train.precision
    )
    metrics = task.evaluate(predictor.predict_normalized, run.datasets[SPLIT])
    metrics["split"] = SPLIT
    metrics["precision"] = predictor.precision
    summary = dict(run.summary)
    summary["loss"] = run.info.loss
    summary["model_config"] = run.info.model
    return summary, metrics


def run_quality(
    *,
    dataset: str,
    model: str,
    budget: float,
    seed: int,
    sets: Sequence[str] = (),
    out: str | Path | None = None,
    group: str = "adhoc",
    label: str | None = None,
    probe_steps: int = 3,
    keep_run: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Probe, train for ``budget`` seconds, evaluate on the val split; write ``out`` if given.

    Returns:
        The result dict (see ``docs/benchmarks.md`` for the fields).
    """
    started = time.perf_counter()
    config = bench_config(dataset, model, sets, budget, seed)
    label = label or model
    speed = probe(config, model, steps=probe_steps)
    log(
        f"[{dataset} / {label} / seed {seed}] probe: {speed['steps_per_second']:.2f} steps/s, "
        f"{speed['images_per_second']:.1f} images/s -> the {budget:g} s budget shows about "
        f"{speed['expected_images']:.0f} training images ({config.train.batch_size} per step, "
        f"{config.train.crop_size} px crops), less the time spent validating"
    )
    run_dir = Path(keep_run) if keep_run else Path(tempfile.mkdtemp(prefix="pixelseg-bench-"))
    try:
        if model == PEER_MODEL:
            summary, metrics = _train_peer(config, log)
        else:
            summary, metrics = _train_pixelseg(config, run_dir)
    finally:
        if not keep_run:
            shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "schema": SCHEMA,
        "group": group,
        "label": label,
        "dataset": dataset,
        "model": model,
        "model_config": summary.pop("model_config"),
        "options": list(sets),
        "loss": summary.pop("loss"),
        "train": config.to_dict()["train"],
        "budget_s": float(budget),
        "seed": int(seed),
        "split": SPLIT,
        **run_fields(summary, metrics, speed, started=started),
    }
    log(
        f"[{dataset} / {label} / seed {seed}] {result['steps']} steps, {result['images_seen']} "
        f"images in {result['train_seconds']:.0f} s: val mIoU {metrics['miou']:.4f}, "
        f"pixel accuracy "
        f"{metrics['pixel_accuracy']:.4f}, boundary F1 {metrics['boundary_f1']:.4f}"
    )
    if out is not None:
        write_result(out, result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument(
        "--model",
        default="pixelseg",
        help=f"pixelseg (the config's default), {PEER_MODEL} (the peer) or a registry name",
    )
    parser.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
        help="config override, e.g. --set model.options.output_stride=8 (repeatable)",
    )  # fmt: skip
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="result JSON path (e.g. bench/results/NAME.json)")
    parser.add_argument("--group", default="adhoc", help="report table the row belongs to")
    parser.add_argument("--label", help="row label in the report (default: the model)")
    parser.add_argument("--probe-steps", type=int, default=3, help="timed steps of the probe")
    parser.add_argument("--keep-run", help="keep pixelseg's run directory here")
    args = parser.parse_args(argv)
    if args.model == PEER_MODEL:
        try:
            import segmentation_models_pytorch  # noqa: F401
        except ImportError:
            parser.error("the peer needs segmentation_models_pytorch: pip install -e '.[bench]'")
    run_quality(
        dataset=args.dataset,
        model=args.model,
        budget=args.budget,
        seed=args.seed,
        sets=args.sets,
        out=args.out,
        group=args.group,
        label=args.label,
        probe_steps=args.probe_steps,
        keep_run=args.keep_run,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
