"""Generate ``docs/benchmarks.md`` from the result JSONs in ``bench/results/``.

Usage::

    python bench/report.py [--results-dir bench/results] [--out docs/benchmarks.md]

Nothing in the Markdown is typed by hand: every number comes from a result file, and the
spread over seeds is half the range (max - min) / 2, so "beats by more than the spread" means
the worst pixelseg seed beats the best peer seed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PEER_MODEL, REPO_ROOT, RESULTS_DIR
from inference_speed import inference_section
from instance_report import instance_section
from pixelseg.files import atomic_write_text
from precision_speed import precision_section
from ttq_report import protocol as ttq_protocol
from ttq_report import ttq_section

Result = dict[str, Any]
RARE_CLASSES = {"camvid": ("Pole", "SignSymbol", "Pedestrian", "Bicyclist"), "drive": ("vessel",)}
# Probe: training steps/s measured before the run; images/s over the budget include validation.
RUN_HEADER = ("Probe steps/s", "Steps", "Images seen", "Images/s over the budget")
HEADLINE_HEADER = (
    "Dataset", "Model", "Seeds", "mIoU %", "Pixel acc. %", "Boundary F1 %", "Majority baseline %",
    "AUC-ROC %", *RUN_HEADER,
)  # fmt: skip
VERDICT_HEADER = (
    "Dataset", "mIoU pixelseg − peer (points)", "pixelseg spread", "peer spread",
    "Beats the peer by more than the spread (worst seed > best peer seed)",
)  # fmt: skip
DATASET_NAMES = {"isbi2012": "ISBI 2012", "drive": "DRIVE", "camvid": "CamVid"}
# Flags that shape the CPU numbers: SIMD widths, bf16 / VNNI, AMX tiles, FMA.
VECTOR_FLAGS = ("avx", "amx", "fma", "f16c")


def load_results(results_dir: str | Path) -> list[Result]:
    """Every row result (``*.json`` with a ``group``) in ``results_dir``, sorted by file name."""
    results = []
    for path in sorted(Path(results_dir).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "group" in data and "metrics" in data:
            results.append(data)
    return results


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _pct(values: Sequence[float]) -> str:
    """``mean ± half-range`` in percent (``—`` when undefined)."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return "—"
    mean = statistics.fmean(kept) * 100
    if len(kept) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {(max(kept) - min(kept)) * 50:.1f}"


def _mean(values: Iterable[float], fmt: str = "{:.0f}") -> str:
    kept = [v for v in values if not math.isnan(v)]
    return fmt.format(statistics.fmean(kept)) if kept else "—"


def _metric(rows: Sequence[Result], key: str) -> list[float]:
    return [_number(r["metrics"].get(key)) for r in rows]


def _class_iou(rows: Sequence[Result], name: str) -> list[float]:
    return [_number(r["metrics"]["per_class_iou"].get(name)) for r in rows]


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return out


def _grouped(results: Sequence[Result], group: str) -> dict[tuple[str, str], list[Result]]:
    """Rows of ``group`` by (dataset, label), in first-seen order."""
    grouped: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        if r["group"] == group:
            grouped.setdefault((r["dataset"], r["label"]), []).append(r)
    return grouped


def _common_columns(rows: Sequence[Result]) -> list[str]:
    return [
        _pct(_metric(rows, "miou")),
        _pct(_metric(rows, "pixel_accuracy")),
        _pct(_metric(rows, "boundary_f1")),
    ]


def _run_columns(rows: Sequence[Result]) -> list[str]:
    return [
        _mean((r["probe"]["steps_per_second"] for r in rows), "{:.2f}"),
        _mean(r["steps"] for r in rows),
        _mean(r["images_seen"] for r in rows),
        _mean((r["train_images_per_second"] for r in rows), "{:.2f}"),
    ]


def _headline_mious(results: Sequence[Result], dataset: str, *, peer: bool) -> list[float]:
    return [
        _number(r["metrics"]["miou"])
        for r in results
        if r["group"] == "headline"
        and r["dataset"] == dataset
        and (r["model"] == PEER_MODEL) == peer
    ]


def headline_section(results: Sequence[Result]) -> list[str]:
    """The pixelseg-vs-peer table, the verdict per dataset, and per-class IoU."""
    grouped = _grouped(results, "headline")
    if not grouped:
        return []
    lines = []
    for (dataset, label), rows in grouped.items():
        auc = _pct(_metric(rows, "auc_roc")) if "auc_roc" in rows[0]["metrics"] else "—"
        lines.append(
            [
                DATASET_NAMES.get(dataset, dataset),
                label,
                str(len(rows)),
                *_common_columns(rows),
                _pct(_metric(rows, "majority_baseline_accuracy")),
                auc,
                *_run_columns(rows),
            ]
        )
    out = ["## Headline: pixelseg's default against the smp peer", ""]
    out += _table(HEADLINE_HEADER, lines)
    out += [
        "",
        "mean ± half the range over seeds; boundary F1 averaged over classes. Probe steps/s: "
        "training speed measured on a synthetic batch before the run; images/s over the budget "
        "count the validation passes too.",
        "",
    ]
    verdicts = []
    for dataset in dict.fromkeys(d for d, _ in grouped):
        ours = _headline_mious(results, dataset, peer=False)
        peer = _headline_mious(results, dataset, peer=True)
        if not ours or not peer:
            continue
        diff = (statistics.fmean(ours) - statistics.fmean(peer)) * 100
        if min(len(ours), len(peer)) < 2:
            verdict = "— (needs two seeds each)"
        else:
            verdict = "yes" if min(ours) > max(peer) else "no"
        verdicts.append(
            [
                DATASET_NAMES.get(dataset, dataset),
                f"{diff:+.1f}",
                f"{(max(ours) - min(ours)) * 50:.1f}",
                f"{(max(peer) - min(peer)) * 50:.1f}",
                verdict,
            ]
        )
    if verdicts:
        out += _table(VERDICT_HEADER, verdicts)
        out.append("")
    for dataset in dict.fromkeys(d for d, _ in grouped):
        entries = [(lab, rows) for (d, lab), rows in grouped.items() if d == dataset]
        names = list(entries[0][1][0]["metrics"]["per_class_iou"])
        out += [f"Per-class IoU % on {DATASET_NAMES.get(dataset, dataset)} (mean over seeds):", ""]
        out += _table(
            ["Model", *names],
            [
                [lab, *(_pct([statistics.fmean(_class_iou(rows, n))]) for n in names)]
                for lab, rows in entries
            ],
        )
        out.append("")
    return out


def _ablation(
    results: Sequence[Result],
    group: str,
    title: str,
    extra: Sequence[tuple[str, Callable[[list[Result]], str]]] = (),
) -> list[str]:
    grouped = _grouped(results, group)
    if not grouped:
        return []
    header = ["Dataset", "Model", "mIoU %", "Pixel acc. %", "Boundary F1 %"]
    header += [name for name, _ in extra] + list(RUN_HEADER)
    lines = [
        [
            DATASET_NAMES.get(d, d),
            lab,
            *_common_columns(rows),
            *(f(rows) for _, f in extra),
            *_run_columns(rows),
        ]
        for (d, lab), rows in grouped.items()
    ]
    budgets = sorted({r["budget_s"] for rows in grouped.values() for r in rows})
    seeds = sorted({r["seed"] for rows in grouped.values() for r in rows})
    note = (
        f"Budget {', '.join(f'{b:g}' for b in budgets)} s per run, seed "
        f"{', '.join(str(s) for s in seeds)}."
    )
    return [f"## {title}", "", *_table(header, lines), "", note, ""]


def _seconds_per_step(rows: list[Result]) -> str:
    return _mean((r["probe"]["seconds_per_step"] for r in rows), "{:.2f}")


def _rare_iou(rows: list[Result]) -> str:
    names = RARE_CLASSES.get(rows[0]["dataset"], ())
    return ", ".join(f"{n} {_pct(_class_iou(rows, n))}" for n in names) or "—"


def machine_section(results: Sequence[Result]) -> list[str]:
    """Where and with what the numbers were measured (all distinct values, if they differ)."""

    def values(*keys: str) -> str:
        found = []
        for r in results:
            value: Any = r
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            found.append(value)
        return ", ".join(str(v) for v in dict.fromkeys(found))

    dates = ", ".join(dict.fromkeys(str(r["machine"]["date"])[:10] for r in results))
    flags = [
        ", ".join(f for f in r["machine"]["cpu_flags"] if f.startswith(VECTOR_FLAGS)) or "none"
        for r in results
        if r["machine"].get("cpu_flags")
    ]
    extra = []
    if flags:
        extra.append(f"- CPU vector / matrix flags (lscpu): {'; '.join(dict.fromkeys(flags))}")
    if any(r["machine"].get("git_dirty") for r in results):
        extra.append(
            "- some rows ran with uncommitted changes (`+dirty`): their commit does not "
            "reproduce them"
        )
    return [
        "## Machine",
        "",
        f"- CPU: {values('machine', 'cpu')}; {values('machine', 'cores')} cores, "
        f"{values('machine', 'torch_threads')} torch threads; native bf16: "
        f"{values('machine', 'cpu_native_bf16')}; GPU: {values('machine', 'cuda')}",
        f"- precision {values('precision')}, device {values('device')}",
        f"- pixelseg {values('machine', 'versions', 'pixelseg')}, torch "
        f"{values('machine', 'versions', 'torch')}, torchvision "
        f"{values('machine', 'versions', 'torchvision')}, segmentation_models_pytorch "
        f"{values('machine', 'versions', 'segmentation_models_pytorch')}, cellpose "
        f"{values('machine', 'versions', 'cellpose')}, Python "
        f"{values('machine', 'python')}",
        f"- git commit {values('machine', 'git_commit')}; measured {dates}",
        *extra,
        "",
    ]


def render(
    results: Sequence[Result], *, note: str | None = None, results_dir: str | Path = RESULTS_DIR
) -> str:
    """The whole Markdown page."""
    out = ["# Benchmarks", ""]
    out += [
        "Generated by `python bench/report.py` from `bench/results/*.json`, which `make bench` "
        "(`python bench/run_all.py`) writes on this machine; do not edit by hand.",
        "",
    ]
    if note:
        out += [f"**{note}**", ""]
    if not results:
        return "\n".join([*out, "No results yet: run `make bench`.", ""])
    budgets = sorted({r["budget_s"] for r in results if r["group"] == "headline"})
    ttq_protocol_lines = ttq_protocol(results)
    # With time-to-quality rows (their own protocol below) this paragraph covers the others.
    scope = "Protocol of the headline and ablation rows" if ttq_protocol_lines else "Protocol"
    out += [
        f"{scope}: every row trains from random initialisation for a fixed wall-clock budget "
        f"(headline: {', '.join(f'{b:g}' for b in budgets) or '—'} s per run; ablations: one "
        "seed and a shorter budget) on the config's training split; the budget alone ends the "
        "run (no epoch cap, no early stopping). Validation after every epoch counts inside the "
        "budget but is only logged: the FINAL weights are evaluated — picking the best epoch on "
        "the reported split would tune on it. Evaluation is on the config's `val` split (ISBI "
        "2012 images 20–29, DRIVE 36–40 inside the field of view, CamVid sequence 0006R0), on "
        "whole images padded to a multiple of 32, by pixelseg's Predictor and metrics for both "
        "sides. pixelseg's default is the model and settings declared in `configs/<dataset>.toml` "
        'before the runs. The peer, `smp.Unet("resnet34", encoder_weights=None)` with Dice + CE, '
        "gets the same crops (pixelseg's training dataset, epoch order and seeded augmentation), "
        "optimiser (AdamW, same learning rate, weight decay, warmup + poly schedule), precision, "
        "channels-last, gradient clipping and budget (`bench/peer_smp.py`).",
        "",
    ]
    out += ttq_protocol_lines
    out += machine_section(results)
    out += precision_section(Path(results_dir))
    out += headline_section(results)
    out += ttq_section(results)
    out += _ablation(
        results,
        "upsampling",
        "Ablation: FCN-32s (transposed / bilinear) vs FCN-8s vs U-Net — do skips sharpen "
        "boundaries?",
    )
    out += _ablation(
        results,
        "output_stride",
        "Ablation: DeepLabV3+ output stride — what dilation buys and costs",
        [("Seconds/step (probe)", _seconds_per_step)],
    )
    out += _ablation(
        results,
        "loss",
        "Ablation: plain CE vs Dice + weighted CE — rare classes",
        [("Rare-class IoU %", _rare_iou)],
    )
    out += instance_section(results, Path(results_dir))
    out += inference_section(Path(results_dir))
    return "\n".join(out) + "\n"


def generate(results_dir: str | Path, out: str | Path, *, note: str | None = None) -> Path:
    """Write the report for ``results_dir`` to ``out`` (atomically) and return its path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render(load_results(results_dir), note=note, results_dir=results_dir))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    print(generate(args.results_dir, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
