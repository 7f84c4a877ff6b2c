"""``make bench``: every row of ``docs/benchmarks.md``, then the report.

Usage::

    python bench/run_all.py                      # headline rows + ablations, then the report
    python bench/run_all.py --only camvid        # rows whose name contains "camvid"
    python bench/run_all.py --probe              # only measure steps/s of the headline models
    python bench/run_all.py --quick              # smoke run in well under a minute
    python bench/run_all.py --only time_to_quality   # issue 14's rows (held-out test split)

A row whose result JSON already exists is skipped, so a killed ``make bench`` resumes where it
stopped (delete a JSON to rerun its row). The headline rows are pixelseg's declared default
(``configs/<dataset>.toml``) against the smp peer, two seeds each; the ablations test the seed's
claims with one seed and a shorter budget. The time-to-quality rows put ISBI 2012, DRIVE and
CamVid on the benchmark-only split (``bench/splits.py``) and score the held-out test split:
pixelseg's default against the plain-loop peer (``bench/peer_plain.py``) at the same budget, the
in-pipeline peer beside them, and pixelseg at half the budget (the stretch target).
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    DATASETS,
    PEER_MODEL,
    PLAIN_MODEL,
    REPO_ROOT,
    RESULTS_DIR,
    git_commit,
    package_version,
    smp_version,
    write_result,
)
from inference_speed import main as measure_inference
from instance_quality import run_instance
from instance_speed import measure as measure_instance_speed
from precision_speed import measure as measure_precision
from report import generate
from semantic_quality import PEERS, bench_config, probe, run_quality

INSTANCE_SEEDS = (0, 1)
TTQ_GROUP = "time_to_quality"
TTQ_SEEDS = (0, 1)
TTQ_LABELS = {
    "pixelseg": "pixelseg default",
    PLAIN_MODEL: "plain smp loop",
    PEER_MODEL: "smp Unet resnet34 (in-pipeline peer)",
}

HEADLINE_SEEDS = (0, 1)
# Quick mode: a few ISBI images and small crops, so the whole harness runs in seconds.
QUICK_SETS = (
    'data.split.train=["0-3"]',
    'data.split.val=["20"]',
    "train.batch_size=2",
    "train.crop_size=64",
)
# ... and for the time-to-quality rows, inside the benchmark split (train 10-24, val 25-29,
# test 0-9); the plain peer gets the same small batches.
QUICK_TTQ_SETS = (
    'data.split.train=["10-13"]',
    'data.split.val=["25"]',
    'data.split.test=["0"]',
    "train.batch_size=2",
    "train.crop_size=64",
)
QUICK_PLAIN = (("plain_crop", 64), ("plain_batch", 2))


@dataclass(frozen=True)
class Row:
    """One training run: a line of a table in the report."""

    group: str
    dataset: str
    model: str
    label: str
    seed: int
    budget: float
    sets: tuple[str, ...] = ()
    split: str = "val"
    checkpoint: str = "last"
    # Further keyword arguments of run_quality (the plain peer's quick-mode crop and batch).
    options: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        """File stem of the row's result JSON."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")
        return f"{self.group}__{self.dataset}__{slug}__s{self.seed}"


def headline_rows(budget: float, seeds: Sequence[int], datasets: Sequence[str]) -> list[Row]:
    """pixelseg's default against the peer; seeds interleaved so a partial run is comparable."""
    return [
        Row("headline", dataset, model, label, seed, budget)
        for dataset in datasets
        for seed in seeds
        for model, label in (("pixelseg", "pixelseg default"), (PEER_MODEL, "smp Unet resnet34"))
    ]


def ttq_rows(
    budget: float, seeds: Sequence[int] = TTQ_SEEDS, datasets: Sequence[str] = DATASETS
) -> list[Row]:
    """Issue 14 on the held-out test split: pixelseg vs the plain loop, then the others.

    Per dataset, pixelseg's default and the plain-loop peer alternate over the seeds, so a
    partial run already holds complete comparisons (ISBI first); then the in-pipeline peer at
    the same budget, then pixelseg at half the budget (the stretch target). pixelseg is scored
    with its best checkpoint on val (its default); the peers with their final weights.
    """

    def row(dataset: str, model: str, seed: int, seconds: float, label: str) -> Row:
        checkpoint = "best" if model == "pixelseg" else "last"
        return Row(
            TTQ_GROUP, dataset, model, label, seed, seconds, split="test", checkpoint=checkpoint
        )

    rows = [
        row(dataset, model, seed, budget, TTQ_LABELS[model])
        for dataset in datasets
        for seed in seeds
        for model in ("pixelseg", PLAIN_MODEL)
    ]
    rows += [
        row(dataset, PEER_MODEL, seed, budget, TTQ_LABELS[PEER_MODEL])
        for dataset in datasets
        for seed in seeds
    ]
    short = budget / 2
    rows += [
        row(dataset, "pixelseg", seed, short, f"{TTQ_LABELS['pixelseg']} {short:g} s")
        for dataset in datasets
        for seed in seeds
    ]
    return rows


def ablation_rows(budget: float, seed: int = 0) -> list[Row]:
    """FCN upsampling/skips vs U-Net, DeepLabV3+ output stride, and CE vs Dice + weighted CE."""
    rows = []
    upsampling: tuple[tuple[str, str, tuple[str, ...]], ...] = (
        ("fcn32s_resnet18", "FCN-32s transposed", ('model.options.upsampling="transposed"',)),
        ("fcn32s_resnet18", "FCN-32s bilinear", ('model.options.upsampling="bilinear"',)),
        ("fcn8s_resnet18", "FCN-8s transposed", ()),
        ("unet_resnet18", "U-Net", ()),
    )
    for dataset in ("isbi2012", "camvid"):
        for model, label, sets in upsampling:
            rows.append(Row("upsampling", dataset, model, label, seed, budget, sets))
    for stride in (8, 16, 32):
        option = (f"model.options.output_stride={stride}",)
        label = f"DeepLabV3+ OS {stride}"
        rows.append(
            Row("output_stride", "camvid", "deeplabv3plus_resnet18", label, seed, budget, option)
        )
    losses: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("plain CE", ('loss.name="ce"', 'loss.class_weighting="none"')),
        ("Dice + median-weighted CE", ('loss.name="dice_ce"', 'loss.class_weighting="median"')),
    )
    for dataset in ("camvid", "drive"):
        for label, loss_sets in losses:
            rows.append(Row("loss", dataset, "unet_resnet18", label, seed, budget, loss_sets))
    return rows


def instance_rows(budget: float) -> list[Row]:
    """DSB2018: every instance method at one budget; the default and the peer get two seeds.

    Ordered so that a partial run already compares the default with the peer and the baseline.
    """
    from instance_quality import DEFAULT_METHOD, METHODS, PEER_METHOD

    first = [DEFAULT_METHOD, PEER_METHOD, "unet_cc", "maskrcnn_align", "maskrcnn_pool"]
    second = [DEFAULT_METHOD, PEER_METHOD, "unet_cc"]
    order = [(m, 0) for m in first] + [(m, s) for s in INSTANCE_SEEDS[1:] for m in second]
    return [Row("instance", "dsb2018", m, METHODS[m][2], seed, budget) for m, seed in order]


def quick_rows(budget: float) -> list[Row]:
    """One dataset, one seed: the headline pair and one ablation row, on a tiny subset."""
    rows = headline_rows(budget, (0,), ("isbi2012",))
    rows.append(
        Row(
            "upsampling",
            "isbi2012",
            "fcn32s_resnet18",
            "FCN-32s bilinear",
            0,
            budget,
            ('model.options.upsampling="bilinear"',),
        )
    )
    rows = [
        Row(r.group, r.dataset, r.model, r.label, r.seed, r.budget, QUICK_SETS + r.sets)
        for r in rows
    ]
    # Time to quality: pixelseg, the plain peer and the in-pipeline peer on the held-out split.
    for row in ttq_rows(budget, (0,), ("isbi2012",)):
        if row.budget == budget:
            options = QUICK_PLAIN if row.model == PLAIN_MODEL else ()
            rows.append(replace(row, sets=QUICK_TTQ_SETS + row.sets, options=options))
    return rows


def select(rows: list[Row], pattern: str | None) -> list[Row]:
    """Rows whose name matches ``pattern`` (a glob, or a substring when it has no wildcard)."""
    if not pattern:
        return rows
    if not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return [r for r in rows if fnmatch.fnmatch(r.name, pattern)]


def run_probe(results_dir: Path, budget: float, steps: int) -> int:
    """Print (and save) the training speed of pixelseg's default and the peer on each dataset."""
    models = ["pixelseg"] + ([PEER_MODEL, PLAIN_MODEL] if smp_version() else [])
    table = []
    for dataset in DATASETS:
        for model in models:
            config = bench_config(dataset, model, (), budget, 0)
            speed = probe(config, model, steps=steps)
            speed.update(dataset=dataset, model=model, budget_s=budget)
            table.append(speed)
            print(
                f"{dataset:9s} {model:18s} {speed['steps_per_second']:6.3f} steps/s "
                f"{speed['images_per_second']:6.2f} images/s -> about "
                f"{speed['expected_images']:7.0f} images in {budget:g} s",
                flush=True,
            )
    write_result(results_dir / "probe.json", {"rows": table})
    return 0


def run_row(row: Row, results_dir: Path, probe_steps: int) -> bool:
    """Run one row in this process and write its JSON; False when it failed (traceback shown)."""
    try:
        if row.group == "instance":
            run_instance(
                method=row.model, budget=row.budget, seed=row.seed,
                out=results_dir / f"{row.name}.json",
            )  # fmt: skip
        else:
            run_quality(
                dataset=row.dataset,
                model=row.model,
                budget=row.budget,
                seed=row.seed,
                sets=row.sets,
                out=results_dir / f"{row.name}.json",
                group=row.group,
                label=row.label,
                probe_steps=probe_steps,
                split=row.split,
                checkpoint=row.checkpoint,
                **dict(row.options),
            )
    except Exception:  # one broken row must not cost the others; reported at the end
        traceback.print_exc()
        return False
    return True


def run_row_in_new_process(row: Row, args: argparse.Namespace) -> bool:
    """Run one row in a fresh Python process (``--row``), so that nothing a row sets in its
    process (pixelseg's allocator setting, thread pools, caches) carries over to the next."""
    command = [sys.executable, str(Path(__file__).resolve()), "--row", row.name]
    for flag in ("budget", "ablation_budget", "ttq_budget", "instance_budget", "probe_steps"):
        value = getattr(args, flag)
        if value is not None:
            command += [f"--{flag.replace('_', '-')}", str(value)]
    if args.results_dir is not None:
        command += ["--results-dir", str(args.results_dir)]
    return subprocess.run(command, check=False).returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, help="headline seconds per run (default 600)")
    parser.add_argument("--ablation-budget", type=float, default=180.0)
    parser.add_argument(
        "--ttq-budget", type=float, default=600.0,
        help="seconds per time-to-quality run (the stretch rows get half)",
    )  # fmt: skip
    parser.add_argument(
        "--instance-budget", type=float, default=1800.0, help="seconds per DSB2018 instance run"
    )
    parser.add_argument("--only", help="run only rows whose name matches (glob or substring)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budgets and data")
    parser.add_argument("--probe", action="store_true", help="only measure steps/s")
    parser.add_argument("--probe-steps", type=int, default=3)
    parser.add_argument("--results-dir", type=Path, help="default bench/results (quick: …/quick)")
    parser.add_argument("--report", type=Path, help="default docs/benchmarks.md")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--row", help="run exactly this row here (what each row's process runs)")
    args = parser.parse_args(argv)
    results_dir = args.results_dir or (RESULTS_DIR / "quick" if args.quick else RESULTS_DIR)
    report = args.report or (
        results_dir / "benchmarks.md" if args.quick else REPO_ROOT / "docs" / "benchmarks.md"
    )
    if args.quick:
        rows = quick_rows(args.budget or 1.0)
        probe_steps = 1
    else:
        budget = args.budget or 600.0
        rows = headline_rows(budget, HEADLINE_SEEDS, DATASETS) + ttq_rows(args.ttq_budget)
        rows += ablation_rows(args.ablation_budget) + instance_rows(args.instance_budget)
        probe_steps = args.probe_steps
    if args.probe:
        return run_probe(results_dir, args.budget or 600.0, probe_steps)
    rows = [r for r in rows if r.name == args.row] if args.row else select(rows, args.only)
    if args.row and not rows:
        parser.error(f"--row {args.row}: no such row (--list shows them)")
    if not smp_version() and any(r.model in PEERS for r in rows):
        if not args.quick:
            parser.error(
                "the peer rows need segmentation_models_pytorch: pip install -e '.[bench]'"
            )
        print("segmentation_models_pytorch is not installed: skipping the peer rows", flush=True)
        rows = [r for r in rows if r.model not in PEERS]
    if package_version("cellpose") is None and any(r.model == "cellpose" for r in rows):
        parser.error("the Cellpose peer rows need cellpose: pip install -e '.[bench]'")
    if args.list:
        for row in rows:
            print(f"{row.name}  ({row.budget:g} s)")
        return 0
    todo = [r for r in rows if not (results_dir / f"{r.name}.json").is_file()]
    commit = git_commit()
    if todo and not args.quick and commit.endswith("+dirty"):
        print(
            f"WARNING: uncommitted changes ({commit}): the results will not name a commit that "
            "reproduces them; commit first for numbers that go into docs/benchmarks.md",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"{len(rows)} rows, {len(rows) - len(todo)} already done; about "
        f"{sum(r.budget for r in todo) / 60:.0f} min of training to go (plus evaluation)",
        flush=True,
    )
    failed = []
    for index, row in enumerate(todo, 1):
        print(f"\n=== [{index}/{len(todo)}] {row.name} ===", flush=True)
        start = time.perf_counter()
        if args.quick or args.row:
            ok = run_row(row, results_dir, probe_steps)
        else:
            ok = run_row_in_new_process(row, args)
        if not ok:
            failed.append(row.name)
        print(f"=== {row.name}: {time.perf_counter() - start:.0f} s ===", flush=True)
    if args.row:
        return 1 if failed else 0
    precision_file = results_dir / "precision.json"
    if not args.quick and not args.only and not precision_file.is_file():
        print("\n=== precision: fp32 vs bf16 step times ===", flush=True)
        write_result(precision_file, measure_precision())
    speed_file = results_dir / "instance_speed.json"
    if not args.quick and not args.only and not speed_file.is_file():
        print("\n=== Mask R-CNN R50-FPN inference: pixelseg vs torchvision ===", flush=True)
        write_result(speed_file, measure_instance_speed())
    inference_file = results_dir / "inference_speed.json"
    if not args.quick and not args.only and not inference_file.is_file():
        print("\n=== inference: pixelseg's predict paths vs smp ===", flush=True)
        measure_inference(["--out", str(inference_file)])
    note = "Quick smoke run (--quick): a tiny data subset and budgets of seconds; not results."
    path = generate(results_dir, report, note=note if args.quick else None)
    print(f"\nreport: {path}")
    if failed:
        print(f"{len(failed)} rows failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
