"""Train one model on one dataset for a fixed wall-clock budget, evaluate it, write a result JSON.

Usage::

    python bench/semantic_quality.py --dataset isbi2012 --model pixelseg --budget 600 --seed 0 \
        --out bench/results/isbi2012__pixelseg__s0.json

    python bench/semantic_quality.py --dataset drive --model plain_smp_unet_resnet34 \
        --split test --budget 600 --seed 0 --out bench/results/drive__plain__s0.json

``--model pixelseg`` is the config's declared default (``configs/<dataset>.toml``);
``--model smp_unet_resnet34`` the in-pipeline peer (:mod:`peer_smp`: smp's U-Net fed by
pixelseg's data pipeline and loop); ``--model plain_smp_unet_resnet34`` the plain-loop peer
(:mod:`peer_plain`: a user's own loop, no pixelseg); any other name is a pixelseg registry model
put in the config's ``model.name`` (its ``model.options`` stay, ``--set`` adds more).

``--split val`` (default) trains on the config's train split and reports its ``val`` split;
``--split test`` puts ISBI 2012, DRIVE and CamVid on the benchmark-only split of
:mod:`splits` (a test split held back from both sides) and reports ``test``. pixelseg rows
train with :func:`pixelseg.train.train` and are evaluated with
:func:`pixelseg.inference.evaluate.evaluate_run` (``--checkpoint last`` or ``best``, picked on
val); both peers are scored by the same semantic task's ``evaluate`` on pixelseg's dataset of
the reported split, so void, padding and field-of-view pixels are handled identically.
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
    PLAIN_MODEL,
    probe_train_speed,
    run_fields,
    write_result,
)
from pixelseg.config import Config, load_config
from pixelseg.data.folder import MaskFolderDataset
from pixelseg.structures import SemanticPrediction, SemanticSample
from splits import split_members, split_overrides

SCHEMA = 2
SPLIT = "val"
SPLIT_CHOICES = ("val", "test")
PEERS = (PEER_MODEL, PLAIN_MODEL)
#: Whole images are padded to a multiple of this for evaluation (pixelseg's eval transform).
EVAL_STRIDE = 32
#: Datasets whose images have an "up" (road scenes): the plain peer flips them horizontally only.
NO_VFLIP = ("camvid",)

BENCH_EPOCHS = 100_000


def bench_config(
    dataset: str,
    model: str,
    sets: Sequence[str],
    budget: float,
    seed: int,
    *,
    split: str = SPLIT,
) -> Config:
    """The dataset's config with the model, split, ``--set`` overrides, budget and seed applied.

    ``split="test"`` first puts the dataset on its benchmark-only split (:mod:`splits`); the
    ``--set`` overrides come after it, so they may narrow it (the quick smoke mode does).
    """
    overrides = list(split_overrides(dataset)) if split == "test" else []
    if model not in ("pixelseg", *PEERS):
        overrides.append(f'model.name="{model}"')
    overrides += list(sets)
    overrides += [f"train.max_time={float(budget)}", f"train.seed={int(seed)}"]
    # Equal precision on both sides: the plain peer trains in fp32, as a user's loop does, and
    # on a CPU with AMX pixelseg's ``precision = "auto"`` would train in bf16 (a faster step:
    # ``bench/precision_speed.py``), so every row here is fp32, as ``auto`` is on other CPUs.
    overrides += ['train.precision="fp32"']
    # The budget alone ends every run: no epoch cap (early stopping is off under a budget by
    # pixelseg's default, which the runs keep).
    overrides += [f"train.epochs={BENCH_EPOCHS}"]
    return load_config(CONFIG_DIR / f"{dataset}.toml", overrides)


def probe(
    config: Config, model: str, *, steps: int, plain_crop: int = 256, plain_batch: int = 8
) -> dict[str, Any]:
    """Training speed of the row's network on a synthetic batch (see ``probe_train_speed``).

    The plain peer is timed with its own settings (:func:`plain_probe_config`); the rows that
    train through pixelseg's engine are timed with its allocator setting
    (:mod:`pixelseg.engine.allocator`), as their steps will run (the plain peer's without it).
    """
    from pixelseg.engine.allocator import keep_freed_memory
    from pixelseg.models.registry import create_model

    data = MaskFolderDataset(config.data)
    in_channels, num_classes = data.in_channels, data.num_classes
    torch.manual_seed(0)
    network: nn.Module
    timed = config
    if model != PLAIN_MODEL:
        keep_freed_memory()
    if model == PLAIN_MODEL:
        import peer_plain

        in_channels = 3  # it reads every image as RGB
        network = peer_plain.smp.Unet(
            peer_plain.ENCODER, encoder_weights=None, in_channels=3, classes=num_classes
        )
        timed = plain_probe_config(config, crop_size=plain_crop, batch_size=plain_batch)
    elif model == PEER_MODEL:
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
        network, loss_fn, timed, in_channels=in_channels, num_classes=num_classes, steps=steps
    )
    speed["parameters_millions"] = sum(p.numel() for p in network.parameters()) / 1e6
    speed["expected_images"] = speed["images_per_second"] * float(config.train.max_time or 0)
    return speed


def plain_probe_config(config: Config, *, crop_size: int, batch_size: int) -> Config:
    """``config`` with the plain loop's training settings, for the probe to time its steps.

    ``batch_size`` crops of ``crop_size`` px (8 of 256 but in the quick mode), AdamW lr 1e-3
    with PyTorch's default weight decay, fp32, no channels-last, no gradient clipping.
    """
    import dataclasses

    import peer_plain

    train = dataclasses.replace(
        config.train,
        batch_size=batch_size,
        crop_size=crop_size,
        lr=peer_plain.LR,
        weight_decay=0.01,
        precision="fp32",
        channels_last=False,
        grad_clip=0.0,
    )
    return dataclasses.replace(config, train=train)


def _semantic_task(dataset: MaskFolderDataset, loss_fn: nn.Module) -> Any:
    """pixelseg's semantic task for scoring a peer (``loss_fn`` is not used by ``evaluate``)."""
    from pixelseg.tasks.semantic.task import SemanticTask

    classmap = dataset.classmap
    return SemanticTask(
        loss_fn,
        num_classes=classmap.num_classes,
        ignore_index=classmap.ignore_index,
        class_names=list(classmap.classes),
    )


def _train_pixelseg(
    config: Config, run_dir: Path, *, split: str, checkpoint: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    from pixelseg.inference.evaluate import evaluate_run
    from pixelseg.train import train

    start = time.perf_counter()
    summary = train(config, run_dir).to_dict()
    summary["train_call_seconds"] = time.perf_counter() - start
    # The engine's own account of where the time went, when it records one.
    summary_file = run_dir / "summary.json"
    if summary_file.is_file():
        recorded = json.loads(summary_file.read_text(encoding="utf-8"))
        for key in ("time_breakdown", "startup_seconds"):
            if key in recorded:
                summary[key] = recorded[key]
    if checkpoint == "best" and not (run_dir / "checkpoints" / "best.safetensors").is_file():
        checkpoint = "last"  # no validation happened: nothing was picked
    metrics = evaluate_run(run_dir, split=split, checkpoint=checkpoint, precision="fp32")
    run_info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    summary["loss"] = run_info["loss"]
    summary["model_config"] = run_info["model"]
    summary["checkpoint"] = checkpoint
    return summary, metrics


def _train_peer(
    config: Config, log: Callable[[str], None], *, split: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    from peer_smp import PeerLoss, train_peer
    from pixelseg.data.build import build_datasets
    from pixelseg.engine.precision import resolve_device, resolve_precision
    from pixelseg.inference.predictor import Predictor

    start = time.perf_counter()
    run = train_peer(config, log=log)
    train_call = time.perf_counter() - start
    datasets = dict(run.datasets)
    if split not in datasets:
        normalizer = datasets["train"].normalizer
        datasets.update(build_datasets(config, (split,), normalizer=normalizer, verify=False))
    task = _semantic_task(datasets[split], PeerLoss(ignore_index=datasets[split].ignore_index))
    # Scored in the precision it trained in (fp32 here), as pixelseg's rows are.
    precision = resolve_precision(config.train.precision, resolve_device("auto"))
    predictor = Predictor(run.model, run.info, task, config=config, precision=precision)
    metrics = task.evaluate(predictor.predict_normalized, datasets[split])
    metrics["split"] = split
    metrics["precision"] = predictor.precision
    summary = dict(run.summary)
    summary["train_call_seconds"] = train_call
    summary["loss"] = run.info.loss
    summary["model_config"] = run.info.model
    summary["checkpoint"] = "final weights"
    return summary, metrics


class PeerImages:
    """pixelseg's dataset of a split with each image as the plain peer reads it itself.

    The mask is pixelseg's (padded to a multiple of 32, void / outside the field of view /
    padding as ``ignore_index``), so the ground truth is exactly what pixelseg's rows are scored
    against; the image is the ``(H, W, 3)`` uint8 array of the peer's own ``read_image``.
    """

    def __init__(self, dataset: MaskFolderDataset, read: Callable[[str], Any]) -> None:
        self.dataset = dataset
        self.read = read

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> SemanticSample:
        sample = self.dataset[index]
        image = self.read(sample.meta["image_path"])
        if tuple(image.shape[:2]) != tuple(sample.meta["orig_size"]):
            raise ValueError(
                f"{sample.meta['image_path']}: the peer reads {image.shape[:2]}, pixelseg "
                f"{sample.meta['orig_size']}"
            )
        return SemanticSample(
            image=torch.from_numpy(image), mask=sample.mask, id=sample.id, meta=sample.meta
        )


def plain_predict_fn(predict: Callable[[Any], torch.Tensor]) -> Callable[..., SemanticPrediction]:
    """The plain peer's ``predict(uint8 image) -> logits`` as the semantic task's ``predict``.

    Its probabilities over the whole image are padded (uniformly: those pixels are
    ``ignore_index`` in the mask and never count) to the evaluation's multiple of 32.
    """

    def predict_fn(image: torch.Tensor, *, region: Any = None) -> SemanticPrediction:
        probs = predict(image.numpy()).float().softmax(0)
        classes, height, width = probs.shape
        padded = torch.full(
            (classes, height + (-height) % EVAL_STRIDE, width + (-width) % EVAL_STRIDE),
            1.0 / classes,
        )
        padded[:, :height, :width] = probs
        return SemanticPrediction(probs=padded, label_map=padded.argmax(0))

    return predict_fn


def _train_plain(
    config: Config,
    dataset: str,
    log: Callable[[str], None],
    *,
    split: str,
    crop_size: int,
    batch_size: int,
    max_steps: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    import peer_plain
    from pixelseg.data.build import build_datasets
    from pixelseg.data.normalize import Normalizer
    from splits import plain_labels, plain_samples

    samples = plain_samples(config, "train")
    labels = plain_labels(config)
    vflip = dataset not in NO_VFLIP
    start = time.perf_counter()
    run = peer_plain.train_plain(
        samples,
        labels,
        budget=float(config.train.max_time or 0),
        seed=config.train.seed,
        crop_size=crop_size,
        batch_size=batch_size,
        vflip=vflip,
        max_steps=max_steps,
        log=log,
    )
    train_call = time.perf_counter() - start
    # pixelseg's dataset of the reported split gives the ground truth; the normaliser does not
    # matter (its normalised images are not used), so no statistics are computed.
    bands = MaskFolderDataset(config.data).in_channels
    identity = Normalizer.identity(bands)
    truth = build_datasets(config, (split,), normalizer=identity, verify=False)[split]
    task = _semantic_task(truth, peer_plain.DiceCE(labels["ignore_index"]))
    with torch.inference_mode():
        metrics = task.evaluate(
            plain_predict_fn(run.predict), PeerImages(truth, peer_plain.read_image)
        )
    metrics["split"] = split
    metrics["precision"] = "fp32"
    summary = dict(run.summary)
    summary.update(
        train_call_seconds=train_call,
        best_epoch=None,
        loss={"name": peer_plain.LOSS_NAME, "weighting": "none", "reason": "the issue's loop"},
        model_config={"name": f"smp.Unet({peer_plain.ENCODER})", "encoder_weights": None},
        checkpoint="final weights",
    )
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
    split: str = SPLIT,
    checkpoint: str = "last",
    plain_crop: int = 256,
    plain_batch: int = 8,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Probe, train for ``budget`` seconds, evaluate on ``split``; write ``out`` if given.

    Args:
        split: ``val`` (the config's split) or ``test`` (the benchmark-only split).
        checkpoint: which pixelseg checkpoint is scored, ``last`` or ``best`` (on val); the
            peers are always scored with their final weights.
        plain_crop: the plain peer's crop size (256; the quick mode uses less).
        plain_batch: the plain peer's batch size (8).

    Returns:
        The result dict (see ``docs/benchmarks.md`` for the fields).
    """
    if split not in SPLIT_CHOICES:
        raise ValueError(f"split {split!r} is not one of {', '.join(SPLIT_CHOICES)}")
    started = time.perf_counter()
    config = bench_config(dataset, model, sets, budget, seed, split=split)
    label = label or model
    speed = probe(config, model, steps=probe_steps, plain_crop=plain_crop, plain_batch=plain_batch)
    batch, crop = config.train.batch_size, config.train.crop_size
    if model == PLAIN_MODEL:
        batch, crop = plain_batch, plain_crop
    log(
        f"[{dataset} / {label} / seed {seed}] probe: {speed['steps_per_second']:.2f} steps/s, "
        f"{speed['images_per_second']:.1f} images/s -> the {budget:g} s budget shows about "
        f"{speed['expected_images']:.0f} training images ({batch} per step, {crop} px crops), "
        "less the time spent validating"
    )
    members = split_members(config)
    run_dir = Path(keep_run) if keep_run else Path(tempfile.mkdtemp(prefix="pixelseg-bench-"))
    try:
        if model == PEER_MODEL:
            summary, metrics = _train_peer(config, log, split=split)
        elif model == PLAIN_MODEL:
            summary, metrics = _train_plain(
                config, dataset, log, split=split, crop_size=plain_crop, batch_size=plain_batch
            )
        else:
            summary, metrics = _train_pixelseg(config, run_dir, split=split, checkpoint=checkpoint)
    finally:
        if not keep_run:
            shutil.rmtree(run_dir, ignore_errors=True)
    train_settings = config.to_dict()["train"]
    if model == PLAIN_MODEL:
        train_settings = {
            k: summary[k] for k in ("batch_size", "crop_size", "lr", "vflip", "preprocessing")
        }
        train_settings.update(max_time=float(budget), seed=int(seed), optimizer="AdamW")
    result = {
        "schema": SCHEMA,
        "group": group,
        "label": label,
        "dataset": dataset,
        "model": model,
        "model_config": summary.pop("model_config"),
        "options": list(sets),
        "loss": summary.pop("loss"),
        "train": train_settings,
        "budget_s": float(budget),
        "seed": int(seed),
        "split": split,
        "split_config": config.to_dict()["data"]["split"],
        "split_sizes": {name: len(ids) for name, ids in members.items()},
        "checkpoint": summary.get("checkpoint"),
        "train_call_seconds": summary.get("train_call_seconds"),
        "peer_summary": (
            {k: v for k, v in summary.items() if k not in ("loss", "model_config")}
            if model in PEERS
            else None
        ),
        **run_fields(summary, metrics, speed, started=started),
    }
    log(
        f"[{dataset} / {label} / seed {seed}] {result['steps']} steps, {result['images_seen']} "
        f"images in {result['train_seconds']:.0f} s: {split} mIoU {metrics['miou']:.4f}, "
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
        help=f"pixelseg (the config's default), {PEER_MODEL} (smp in pixelseg's pipeline), "
        f"{PLAIN_MODEL} (the plain loop) or a registry name",
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
    parser.add_argument(
        "--split", default=SPLIT, choices=SPLIT_CHOICES,
        help="val: the config's split; test: the benchmark-only held-out split (bench/splits.py)",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint", default="last", choices=("last", "best"),
        help="pixelseg checkpoint to score (best: picked on val); peers: final weights",
    )  # fmt: skip
    parser.add_argument("--plain-crop", type=int, default=256, help="plain peer's crop size")
    parser.add_argument("--plain-batch", type=int, default=8, help="plain peer's batch size")
    args = parser.parse_args(argv)
    if args.model in PEERS:
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
        split=args.split,
        checkpoint=args.checkpoint,
        plain_crop=args.plain_crop,
        plain_batch=args.plain_batch,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
