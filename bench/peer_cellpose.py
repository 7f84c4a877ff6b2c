"""The instance benchmark's peer: Cellpose 3 (``cellpose==3.1.1.2``), trained from scratch.

Cellpose is what people who segment nuclei reach for today. It is trained here with its own
recipe (``cellpose.train.train_seg`` defaults: AdamW, learning rate 0.005, weight decay 1e-5,
batches of 8 random 224 px patches rescaled so objects have its ``diam_mean``, 17 px as its
nuclei model uses) on the same train split as pixelseg, for the same wall-clock budget, from
random weights (``pretrained_model=False``: nothing is downloaded).

- Images are given as one grey channel (the mean of the bands, ``channels=[0, 0]``), as Cellpose
  users do with nuclei; labels are the split's instance label images.
- Flows are computed once before the clock starts (``dynamics.labels_to_flows``), as Cellpose
  users do; their time is reported as ``flow_seconds`` and not charged to the budget, which
  favours the peer a little.
- The budget: ``train_seg`` has no time limit and counts its schedule in epochs, so an epoch is
  made one batch (``nimg_per_epoch=8``) and ``n_epochs`` the number of steps a speed probe says
  fit in the budget: the warm-up and the final learning-rate halvings then happen inside it.
  The loss function is wrapped to stop training once the budget is spent; the weights in memory
  then are the ones evaluated (as pixelseg's bench rows are evaluated on what the budget gave).
- Thresholds (``cellprob_threshold`` x ``flow_threshold``) are tuned on val by pooled matching AP
  at IoU 0.5, the criterion pixelseg's own tuning uses; then the test split is predicted with
  ``CellposeModel.eval`` and scored by the same
  :class:`~pixelseg.metrics.instance.InstanceEvaluator`.
  An object's score (for COCO AP) is its mean cell probability, as pixelseg's watershed does.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from common import instance_splits, time_steps
from pixelseg.config import Config
from pixelseg.data.instance.dataset import InstanceDataset
from pixelseg.metrics.instance import InstanceEvaluator
from pixelseg.metrics.matching import pooled_ap50
from pixelseg.postprocess.watershed import mean_per_object

DIAM_MEAN = 17.0  # Cellpose's nuclei model convention
BATCH_SIZE = 8  # train_seg's default
PATCH = 224  # train_seg's default bsize
CELLPROB_THRESHOLDS = (-1.0, 0.0, 1.0)
FLOW_THRESHOLDS = (0.4, 0.6, 0.8)
MIN_SIZE = 15  # CellposeModel.eval's default


class BudgetReachedError(Exception):
    """Raised inside ``train_seg`` when the wall-clock budget is spent."""


@dataclass
class Split:
    """One split as Cellpose takes it: grey images and label images."""

    ids: list[str]
    images: list[np.ndarray]
    labels: list[np.ndarray]


def load_split(dataset: InstanceDataset) -> Split:
    """The images (grey, float32) and instance label images of one split's raw dataset."""
    ids, images, labels = [], [], []
    for index in range(len(dataset)):
        loaded = dataset.load(index)
        image = loaded.image.astype(np.float32)
        images.append(image.mean(axis=-1) if image.ndim == 3 else image)
        labels.append(np.asarray(loaded.label_image, dtype=np.int32))
        ids.append(dataset.samples[index].id)
    return Split(ids=ids, images=images, labels=labels)


def _new_model(seed: int) -> Any:
    from cellpose import models

    torch.manual_seed(seed)
    np.random.seed(seed)
    return models.CellposeModel(gpu=False, pretrained_model=False, diam_mean=DIAM_MEAN, nchan=2)


def probe_speed(seed: int, *, steps: int = 2) -> dict[str, float]:
    """Time Cellpose training steps (after one warm-up) on a synthetic batch of its shape."""
    from cellpose import train

    model = _new_model(seed)
    net = model.net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.005, weight_decay=1e-5)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.standard_normal((BATCH_SIZE, 2, PATCH, PATCH), np.float32))
    flows = rng.random((BATCH_SIZE, 3, PATCH, PATCH), np.float32)

    def step() -> None:
        loss = train._loss_fn_seg(flows, net(images)[0], model.device)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_steps(step, steps=steps, batch_size=BATCH_SIZE)


def train_cellpose(
    train_split: Split, *, budget: float, seed: int, steps_per_second: float, save_dir: str
) -> tuple[Any, dict[str, Any]]:
    """Train a Cellpose model from scratch for ``budget`` seconds; return it and a summary."""
    from cellpose import dynamics, train

    start_flows = time.perf_counter()
    flows = dynamics.labels_to_flows(train_split.labels, device=torch.device("cpu"))
    flow_seconds = time.perf_counter() - start_flows
    kept = sum(1 for labels in train_split.labels if len(np.unique(labels)) - 1 >= 5)
    # One batch per "epoch", so Cellpose's epoch-based schedule (10 warm-up epochs; halvings over
    # the last 50 when n_epochs > 100) fits the budget; 90 % of the probe's step count, since
    # real steps also augment.
    n_epochs = max(1, int(0.9 * budget * steps_per_second))
    model = _new_model(seed)
    counters = {"steps": 0, "images_seen": 0}
    original = train._loss_fn_seg
    start = time.perf_counter()

    def budgeted_loss(lbl: np.ndarray, y: torch.Tensor, device: torch.device) -> torch.Tensor:
        if time.perf_counter() - start > budget:
            raise BudgetReachedError
        counters["steps"] += 1
        counters["images_seen"] += len(lbl)
        return original(lbl, y, device)

    train._loss_fn_seg = budgeted_loss
    budget_hit = False
    try:
        train.train_seg(
            model.net,
            train_data=train_split.images,
            train_labels=flows,
            channels=[0, 0],
            n_epochs=n_epochs,
            batch_size=BATCH_SIZE,
            nimg_per_epoch=BATCH_SIZE,
            save_every=n_epochs,
            save_path=save_dir,
            min_train_masks=5,
            model_name="cellpose_bench",
        )
    except BudgetReachedError:
        budget_hit = True
    finally:
        train._loss_fn_seg = original
    train_seconds = time.perf_counter() - start
    model.net.eval()
    summary = {
        "steps": counters["steps"],
        "images_seen": counters["images_seen"],
        "epochs": counters["images_seen"] / kept,
        "planned_epochs": n_epochs,
        "train_seconds": train_seconds,
        "budget_hit": budget_hit,
        "flow_seconds": flow_seconds,
        "train_images_used": kept,
        "diam_labels": float(model.net.diam_labels.item()),
    }
    return model, summary


def _scores(cellprob: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    return mean_per_object(1.0 / (1.0 + np.exp(-cellprob)), labels)


def tune_thresholds(
    model: Any, val: Split, *, diameter: float, progress: Callable[[str], None] = print
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Grid search of ``cellprob_threshold`` x ``flow_threshold`` on val (pooled AP50)."""
    from cellpose import dynamics

    rescale = model.diam_mean / diameter
    niter = int(200 / rescale)
    maps = []
    for image in val.images:
        _, flows, _ = model.eval(image, channels=[0, 0], diameter=diameter, compute_masks=False)
        maps.append((flows[1], flows[2]))
    table: list[dict[str, Any]] = []
    best: dict[str, float] = {"cellprob_threshold": 0.0, "flow_threshold": 0.4}
    best_score = -1.0
    for cellprob_t, flow_t in itertools.product(CELLPROB_THRESHOLDS, FLOW_THRESHOLDS):
        preds = (
            dynamics.resize_and_compute_masks(
                dp,
                cellprob,
                niter=niter,
                cellprob_threshold=cellprob_t,
                flow_threshold=flow_t,
                min_size=MIN_SIZE,
                device=model.device,
            )
            for dp, cellprob in maps
        )
        row = {"cellprob_threshold": cellprob_t, "flow_threshold": flow_t}
        row.update(pooled_ap50(preds, val.labels))
        table.append(row)
        score = row["matching_ap50_pooled"]
        progress(f"  cellprob {cellprob_t:+.1f}, flow {flow_t:.1f}: val AP50 {score:.4f}")
        if score > best_score:
            best = {"cellprob_threshold": cellprob_t, "flow_threshold": flow_t}
            best_score = score
    return best, table


def evaluate(
    model: Any, split: Split, *, diameter: float, thresholds: dict[str, float]
) -> dict[str, Any]:
    """Predict every image of ``split`` with ``CellposeModel.eval`` and score it.

    The timed loop holds prediction (network and flow dynamics) and the evaluator update, as
    pixelseg's task ``evaluate`` times its prediction, post-processing and update.
    """
    evaluator = InstanceEvaluator()
    start = time.perf_counter()
    for image_id, image, truth in zip(split.ids, split.images, split.labels):
        masks, flows, _ = model.eval(
            image, channels=[0, 0], diameter=diameter, min_size=MIN_SIZE, **thresholds
        )
        masks = np.asarray(masks, dtype=np.int64)
        evaluator.update(masks, truth, scores=_scores(flows[2], masks), image_id=image_id)
    seconds = time.perf_counter() - start
    result = evaluator.compute()
    result["images_per_second"] = len(split.ids) / max(seconds, 1e-9)
    result["postprocess"] = {"method": "cellpose", "diameter": diameter, **thresholds}
    return result


def run_cellpose(
    config: Config,
    *,
    budget: float,
    seed: int,
    save_dir: str,
    splits: Sequence[str] = ("train", "val", "test"),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Probe, train, tune on val and evaluate on test; returns the pieces of a result row."""
    speed = probe_speed(seed)
    data = {name: load_split(ds) for name, ds in instance_splits(config, splits).items()}
    log(
        f"[cellpose / seed {seed}] probe: {speed['steps_per_second']:.3f} steps/s, "
        f"{speed['images_per_second']:.2f} patches/s -> about "
        f"{speed['images_per_second'] * budget:.0f} training patches in {budget:g} s"
    )
    model, summary = train_cellpose(
        data["train"],
        budget=budget,
        seed=seed,
        steps_per_second=speed["steps_per_second"],
        save_dir=save_dir,
    )
    diameter = summary["diam_labels"]
    thresholds, table = tune_thresholds(model, data["val"], diameter=diameter, progress=log)
    metrics = evaluate(model, data["test"], diameter=diameter, thresholds=thresholds)
    metrics["tuning"] = {"tuned_on": "val", "score": "matching_ap50_pooled", "table": table}
    return {"probe": speed, "summary": summary, "metrics": metrics}
