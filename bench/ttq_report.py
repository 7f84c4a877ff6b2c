"""The time-to-quality section of ``docs/benchmarks.md`` (issue 14), from the result JSONs.

Rows of the ``time_to_quality`` group are sorted into roles by model and budget: pixelseg's
default at the dataset's full budget, the plain-loop peer, the in-pipeline peer, and pixelseg at
a shorter budget (the stretch target). Spreads are half the range over seeds, so "beats by more
than the spread" means the worst pixelseg seed beats the best peer seed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from common import PEER_MODEL, PLAIN_MODEL
from provenance import measured_on
from splits import SPLIT_TEXT

Result = dict[str, Any]
GROUP = "time_to_quality"
DATASET_NAMES = {"isbi2012": "ISBI 2012", "drive": "DRIVE", "camvid": "CamVid"}
ROLES = ("pixelseg", "plain", "pipeline", "stretch")
ROLE_NAMES = {
    "pixelseg": "pixelseg default",
    "plain": "plain smp loop (peer)",
    "pipeline": "smp Unet resnet34 in pixelseg's pipeline",
    "stretch": "pixelseg default",
}
BUDGET_USE = 0.9  # share of the wall in optimizer steps
PROBE_RATE = 0.9  # training images/s over the run against the probe's
STARTUP = 0.1  # start-up share of the budget
QUALITY_HEADER = (
    "Dataset", "Row", "Budget s", "Seeds", "Test mIoU %", "Pixel acc. %", "Boundary F1 %",
    "AUC-ROC %", "Scored weights",
)  # fmt: skip
RUN_HEADER = (
    "Dataset", "Row", "Budget s", "Steps", "Crops seen", "Probe images/s",
    "Images/s over the run", "Of the probe %", "In optimizer steps %", "Start-up s",
    "Time breakdown (% of the wall)", "Measured on (CPU @ commit)",
)  # fmt: skip
LABELS = {
    "startup": "start-up",
    "steps": "steps",
    "data": "data",
    "validation": "validation",
    "checkpoints": "checkpoints",
    "logging": "logging",
    "post_training": "post-training",
    "other": "other",
}


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _kept(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def _pct(values: Sequence[float]) -> str:
    kept = _kept(values)
    if not kept:
        return "—"
    mean = statistics.fmean(kept) * 100
    return f"{mean:.1f}" if len(kept) == 1 else f"{mean:.1f} ± {(max(kept) - min(kept)) * 50:.1f}"


def _mean(values: Sequence[float], fmt: str) -> str:
    kept = _kept(values)
    return fmt.format(statistics.fmean(kept)) if kept else "—"


def role(result: Result, full_budget: float) -> str | None:
    """``pixelseg``, ``plain``, ``pipeline``, ``stretch`` (pixelseg under the full budget)."""
    if result["model"] == PLAIN_MODEL:
        return "plain"
    if result["model"] == PEER_MODEL:
        return "pipeline"
    if result["model"] == "pixelseg":
        return "pixelseg" if result["budget_s"] >= full_budget else "stretch"
    return None


def fractions(result: Result) -> dict[str, float]:
    """The run's time breakdown as fractions of its wall time (``{}`` when not recorded)."""
    breakdown = result.get("time_breakdown")
    if not isinstance(breakdown, dict):
        return {}
    values = breakdown.get("fractions", breakdown)
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float)}


def step_share(result: Result) -> float:
    """Fraction of the wall time in optimizer steps (NaN when not recorded)."""
    found = fractions(result)
    for key in ("steps", "optimizer_steps", "step"):
        if key in found:
            return found[key]
    return math.nan


def startup_seconds(result: Result) -> float:
    """Seconds from the command to the first optimizer step (NaN when not recorded)."""
    if result.get("startup_seconds") is not None:
        return float(result["startup_seconds"])
    breakdown = result.get("time_breakdown")
    if isinstance(breakdown, dict) and isinstance(breakdown.get("seconds"), dict):
        return _number(breakdown["seconds"].get("startup"))
    return math.nan


def probe_ratio(result: Result) -> float:
    """Training images/s over the run divided by the probe's pure-step images/s."""
    probe = _number(result.get("probe", {}).get("images_per_second"))
    if not probe or math.isnan(probe):
        return math.nan
    return float(result["train_images_per_second"]) / probe


def _breakdown_text(rows: Sequence[Result]) -> str:
    """Mean fraction per category over the seeds, largest first, those of at least 0.5 %."""
    per_row = [fractions(r) for r in rows]
    per_row = [f for f in per_row if f]
    if not per_row:
        return "—"
    keys = list(dict.fromkeys(k for f in per_row for k in f))
    means = {k: statistics.fmean(f.get(k, 0.0) for f in per_row) for k in keys}
    parts = [
        f"{LABELS.get(k, k)} {v * 100:.1f}"
        for k, v in sorted(means.items(), key=lambda kv: -kv[1])
        if v >= 0.005
    ]
    return ", ".join(parts) or "—"


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(line) + " |" for line in lines]


def grouped(results: Sequence[Result]) -> dict[str, dict[str, list[Result]]]:
    """The group's rows by dataset (first-seen order) and role."""
    rows = [r for r in results if r.get("group") == GROUP]
    out: dict[str, dict[str, list[Result]]] = {}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        full = max(r["budget_s"] for r in mine)
        roles: dict[str, list[Result]] = {}
        for r in mine:
            name = role(r, full)
            if name is not None:
                roles.setdefault(name, []).append(r)
        out[dataset] = {name: roles[name] for name in ROLES if name in roles}
    return out


def _mious(rows: Sequence[Result]) -> list[float]:
    return _kept([_number(r["metrics"].get("miou")) for r in rows])


def _spread(values: Sequence[float]) -> float:
    return (max(values) - min(values)) / 2 if values else math.nan


def _row_name(role_name: str, rows: Sequence[Result]) -> str:
    if role_name == "stretch":
        budgets = sorted({r["budget_s"] for r in rows})
        return f"{ROLE_NAMES[role_name]}, {', '.join(f'{b:g}' for b in budgets)} s"
    return ROLE_NAMES[role_name]


def verdicts(dataset: str, roles: dict[str, list[Result]]) -> list[tuple[str, str, str]]:
    """``(target, measured, met)`` for one dataset; ``met`` is yes, no or a dash with why."""
    out = []
    ours, plain = roles.get("pixelseg", []), roles.get("plain", [])
    ours_miou, plain_miou = _mious(ours), _mious(plain)
    if ours_miou and plain_miou:
        diff = (statistics.fmean(ours_miou) - statistics.fmean(plain_miou)) * 100
        measured = (
            f"{statistics.fmean(ours_miou) * 100:.1f} vs {statistics.fmean(plain_miou) * 100:.1f} "
            f"({diff:+.1f} points; worst pixelseg seed {min(ours_miou) * 100:.1f}, best peer "
            f"seed {max(plain_miou) * 100:.1f})"
        )
        if min(len(ours_miou), len(plain_miou)) < 2:
            met = "— (needs two seeds each)"
        else:
            met = "yes" if min(ours_miou) > max(plain_miou) else "no"
        out.append(("mIoU above the plain peer by more than the seed spread", measured, met))
    if ours:
        shares = [step_share(r) for r in ours]
        if _kept(shares):
            worst = min(_kept(shares))
            measured = f"worst seed {worst * 100:.1f} %"
            if worst < BUDGET_USE:
                met = "no"
            elif len(_kept(shares)) < len(shares):
                met = "— (not recorded for every seed)"
            else:
                met = "yes"
        else:
            measured, met = "not recorded", "— (no time breakdown)"
        out.append(("Budget use: ≥ 90 % of the wall in optimizer steps", measured, met))
        ratios = _kept([probe_ratio(r) for r in ours])
        if ratios:
            met = "yes" if min(ratios) >= PROBE_RATE else "no"
            out.append(
                (
                    "Training images/s over the run ≥ 90 % of the probe's",
                    f"worst seed {min(ratios) * 100:.1f} %",
                    met,
                )
            )
        startups = [startup_seconds(r) / r["budget_s"] for r in ours]
        if _kept(startups):
            worst = max(_kept(startups))
            seconds = max(_kept([startup_seconds(r) for r in ours]))
            met = "yes" if worst < STARTUP else "no"
            measured = f"worst seed {seconds:.1f} s = {worst * 100:.1f} % of the budget"
        else:
            measured, met = "not recorded", "— (no start-up time)"
        out.append(("Start-up under 10 % of the budget", measured, met))
    stretch = _mious(roles.get("stretch", []))
    if stretch and plain_miou:
        budgets = sorted({r["budget_s"] for r in roles["stretch"]})
        full = sorted({r["budget_s"] for r in plain})
        mean_s, mean_p = statistics.fmean(stretch) * 100, statistics.fmean(plain_miou) * 100
        out.append(
            (
                f"Stretch: pixelseg at {', '.join(f'{b:g}' for b in budgets)} s ≥ the plain peer "
                f"at {', '.join(f'{b:g}' for b in full)} s (means)",
                f"{mean_s:.1f} vs {mean_p:.1f}",
                "yes" if mean_s >= mean_p else "no",
            )
        )
    return out


def instance_startup(results: Sequence[Result]) -> tuple[str, str, str] | None:
    """The start-up target on DSB2018, from the instance rows that recorded it."""
    rows = [
        r
        for r in results
        if r.get("group") == "instance" and not r.get("peer") and r.get("budget_s")
    ]
    shares = [(startup_seconds(r), startup_seconds(r) / r["budget_s"]) for r in rows]
    shares = [s for s in shares if not math.isnan(s[0])]
    if not shares:
        return None
    seconds, worst = max(shares, key=lambda s: s[1])
    measured = f"worst row {seconds:.1f} s = {worst * 100:.1f} % of the budget"
    return ("Start-up under 10 % of the budget", measured, "yes" if worst < STARTUP else "no")


def protocol(results: Sequence[Result]) -> list[str]:
    """The protocol paragraph of the group (empty when it has no rows)."""
    datasets = grouped(results)
    if not datasets:
        return []
    budgets = sorted({r["budget_s"] for roles in datasets.values() for r in roles.get("plain", [])})
    splits = "; ".join(SPLIT_TEXT[d] for d in datasets if d in SPLIT_TEXT)
    return [
        "Time to quality (issue 14): each dataset is put on a benchmark-only split that holds a "
        f"test split back from both sides ({splits}; `bench/splits.py`, applied as "
        "`data.split` overrides — the shipped configs keep their own splits). Both sides train "
        "on the same train split for the same wall-clock budget "
        f"({', '.join(f'{b:g}' for b in budgets) or '—'} s), one process at a time, and are "
        "scored on test by pixelseg's metrics: pixelseg's default (`configs/<dataset>.toml`) "
        "with its best checkpoint picked on the benchmark val split; the plain-loop peer "
        '(`bench/peer_plain.py`: `smp.Unet("resnet34", encoder_weights=None)`, its own '
        "loading of whole images into memory, image / 255, random 256 px crops and flips, batch "
        "8, AdamW lr 1e-3, smp Dice + CE, no validation, its start-up inside its budget, fp32) "
        "with its final weights, predicting each test image with its own preprocessing against "
        "the ground truth of pixelseg's test dataset (void, padding and DRIVE's field of view "
        "identical); the in-pipeline peer (`bench/peer_smp.py`, below) with its final weights.",
        "",
    ]


def ttq_section(results: Sequence[Result]) -> list[str]:
    """Quality and run tables, the targets and per-class IoU of the group."""
    datasets = grouped(results)
    if not datasets:
        return []
    quality, runs = [], []
    for dataset, roles in datasets.items():
        name = DATASET_NAMES.get(dataset, dataset)
        for role_name, rows in roles.items():
            label = _row_name(role_name, rows)
            budgets = ", ".join(f"{b:g}" for b in sorted({r["budget_s"] for r in rows}))
            has_auc = any("auc_roc" in r["metrics"] for r in rows)
            weights = ", ".join(dict.fromkeys(str(r.get("checkpoint") or "—") for r in rows))
            quality.append(
                [
                    name,
                    label,
                    budgets,
                    str(len(rows)),
                    _pct([_number(r["metrics"].get("miou")) for r in rows]),
                    _pct([_number(r["metrics"].get("pixel_accuracy")) for r in rows]),
                    _pct([_number(r["metrics"].get("boundary_f1")) for r in rows]),
                    _pct([_number(r["metrics"].get("auc_roc")) for r in rows]) if has_auc else "—",
                    weights,
                ]
            )
            runs.append(
                [
                    name,
                    label,
                    budgets,
                    _mean([r["steps"] for r in rows], "{:.0f}"),
                    _mean([r.get("crops_seen", r["images_seen"]) for r in rows], "{:.0f}"),
                    _mean([_number(r["probe"].get("images_per_second")) for r in rows], "{:.2f}"),
                    _mean([r["train_images_per_second"] for r in rows], "{:.2f}"),
                    _mean([probe_ratio(r) * 100 for r in rows], "{:.0f}"),
                    _mean([step_share(r) * 100 for r in rows], "{:.1f}"),
                    _mean([startup_seconds(r) for r in rows], "{:.1f}"),
                    _breakdown_text(rows),
                    measured_on(rows),
                ]
            )
    out = ["## Time to quality: pixelseg against a plain smp loop (held-out test split)", ""]
    out += _table(QUALITY_HEADER, quality)
    out += [
        "",
        "mean ± half the range over seeds, on the test split nobody tuned on; boundary F1 "
        "averaged over classes.",
        "",
    ]
    out += _table(RUN_HEADER, runs)
    out += [
        "",
        "Steps and crops seen: means over seeds. Probe images/s: pure optimizer steps on a "
        "synthetic batch of the row's batch and crop size, timed before the run. Images/s over "
        "the run: crops seen ÷ the run's wall time (pixelseg: its whole run, start-up, "
        "validation, checkpoints and post-training included; plain peer: from the start of its "
        "data loading to its last step). Time breakdown: the run's own account (pixelseg's "
        "`summary.json`; the plain peer times its loading, its steps — forward, backward, "
        "optimizer — and the sampling of its crops). Step counts compare only between rows "
        "measured on the same CPU.",
        "",
    ]
    lines, missed, open_ = [], [], []
    for dataset, roles in datasets.items():
        name = DATASET_NAMES.get(dataset, dataset)
        for target, measured, met in verdicts(dataset, roles):
            lines.append([name, target, measured, met])
            if met == "no":
                missed.append(f"{name}: {target} ({measured})")
            elif met != "yes":
                open_.append(f"{name}: {target} {met}")
    dsb = instance_startup(results)
    if dsb is not None:
        lines.append(["DSB2018 (instance rows)", *dsb])
        if dsb[2] == "no":
            missed.append(f"DSB2018: {dsb[0]} ({dsb[1]})")
    out += ["Targets:", ""]
    out += _table(("Dataset", "Target", "Measured", "Met"), lines)
    out.append("")
    out.append(
        "Missed: " + "; ".join(missed) + "." if missed else "Missed: none of the targets measured."
    )
    if open_:
        out.append("")
        out.append("Not decided yet: " + "; ".join(open_) + ".")
    out.append("")
    for dataset, roles in datasets.items():
        entries = list(roles.items())
        names = list(entries[0][1][0]["metrics"]["per_class_iou"])
        out += [
            f"Per-class test IoU % on {DATASET_NAMES.get(dataset, dataset)} (mean over seeds):",
            "",
        ]
        table = []
        for role_name, rows in entries:
            cells = []
            for n in names:
                values = _kept([_number(r["metrics"]["per_class_iou"].get(n)) for r in rows])
                cells.append(f"{statistics.fmean(values) * 100:.1f}" if values else "—")
            table.append([_row_name(role_name, rows), *cells])
        out += _table(["Row", *names], table)
        out.append("")
    return out
