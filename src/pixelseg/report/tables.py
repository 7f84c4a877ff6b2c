"""Metric tables for the console and Markdown, with the honesty warnings next to the numbers."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.table import Table

from pixelseg.metrics.results import SemanticResult

CLOSE_TO_BASELINE = 0.02
ACCURACY_MIOU_GAP = 0.25


def pct(value: Any) -> str:
    """A fraction as a percentage with two decimals, or "absent" for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "absent"
    return f"{100 * float(value):.2f}"


def semantic_warnings(metrics: SemanticResult) -> list[str]:
    """Warnings when pixel accuracy flatters: close to the majority baseline, or far above mIoU."""
    warnings = []
    accuracy = metrics.get("pixel_accuracy")
    baseline = metrics.get("majority_baseline_accuracy")
    miou = metrics.get("miou")
    if accuracy is not None and baseline is not None and accuracy - baseline < CLOSE_TO_BASELINE:
        where = (
            "is below"
            if accuracy < baseline
            else f"is within {100 * CLOSE_TO_BASELINE:.0f} points of"
        )
        warnings.append(
            f"pixel accuracy {pct(accuracy)} % {where} predicting the majority class everywhere "
            f"({pct(baseline)} %): the model has learned little beyond the class frequencies"
        )
    if accuracy is not None and miou is not None and accuracy - miou > ACCURACY_MIOU_GAP:
        warnings.append(
            f"mIoU {pct(miou)} % is far below pixel accuracy {pct(accuracy)} %: the frequent "
            "classes hide poor rare classes — read the per-class IoU"
        )
    for name, entry in _merge_classes(metrics):
        if entry["touching"]:
            warnings.append(
                f"{pct(entry['near_fraction'])} % of the true {name} objects lie within "
                f"{metrics['merge_rate']['gap_pixels']} px of another and the prediction merged "
                f"{pct(entry['merge_rate'])} % of them: a semantic map cannot count touching "
                'objects — to count them, train an instance method (task = "watershed" or '
                '"instance")'
            )
    return warnings


def _merge_classes(metrics: SemanticResult) -> list[tuple[str, dict[str, Any]]]:
    """The classes with countable objects and their merge statistics."""
    return list(((metrics.get("merge_rate") or {}).get("per_class") or {}).items())


def interval_text(interval: Any) -> str:
    """``[low, high]`` fractions as ``"61.20–70.05"`` percent, or ``"-"`` when unknown."""
    if not interval or any(v is None or math.isnan(float(v)) for v in interval):
        return "-"
    return f"{pct(interval[0])}–{pct(interval[1])}"


def class_interval(metrics: SemanticResult, name: str) -> str:
    """The class's IoU interval over images (see :mod:`pixelseg.metrics.bootstrap`)."""
    return interval_text(metrics.get("intervals", {}).get("per_class_iou", {}).get(name))


def per_class_rows(metrics: SemanticResult) -> list[tuple[str, Any, Any, Any]]:
    """``(class, IoU, Dice, boundary F1)`` rows sorted by IoU (absent classes last)."""
    iou = metrics.get("per_class_iou", {})
    dice = metrics.get("per_class_dice", {})
    bf1 = metrics.get("per_class_boundary_f1", {})

    def key(name: str) -> float:
        value = iou[name]
        return -1.0 if value is None or math.isnan(value) else float(value)

    return [(n, iou[n], dice.get(n), bf1.get(n)) for n in sorted(iou, key=key, reverse=True)]


def semantic_table(metrics: SemanticResult, *, title: str) -> Table:
    """A rich table: per-class IoU / Dice / boundary F1, sorted by IoU."""
    table = Table(title=title, show_edge=False)
    for column in ("class", "IoU %", "IoU 95 % CI", "Dice %", "boundary F1 %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, iou, dice, bf1 in per_class_rows(metrics):
        table.add_row(
            name,
            pct(iou),
            class_interval(metrics, name),
            pct(dice),
            pct(bf1) if bf1 is not None else "-",
        )
    return table


def summary_lines(metrics: SemanticResult) -> list[str]:
    """The headline lines: mIoU (with its definition) first, accuracy beside its baseline."""
    intervals = metrics.get("intervals") or {}
    spread = ""
    if intervals.get("miou"):
        spread = (
            f" [{100 * intervals['level']:.0f} % CI {interval_text(intervals['miou'])} over "
            f"{intervals['images']} images, {intervals['resamples']} bootstrap resamples]"
        )
    lines = [
        f"mIoU {pct(metrics.get('miou'))} %{spread} ({metrics.get('miou_definition', 'dataset')}"
        "-level: intersections and unions summed over the split; per-image mean "
        f"{pct(metrics.get('miou_per_image'))} %)",
        f"mean Dice {pct(metrics.get('mean_dice'))} %, frequency-weighted IoU "
        f"{pct(metrics.get('fwiou'))} %, mean class accuracy "
        f"{pct(metrics.get('mean_class_accuracy'))} %",
        f"pixel accuracy {pct(metrics.get('pixel_accuracy'))} % vs majority-class baseline "
        f"{pct(metrics.get('majority_baseline_accuracy'))} %",
    ]
    if metrics.get("boundary_f1") is not None:
        lines.append(f"boundary F1 {pct(metrics['boundary_f1'])} % (tolerance 0.75 % of diagonal)")
    if metrics.get("auc_roc") is not None:
        lines.append(f"AUC-ROC {float(metrics['auc_roc']):.4f}")
    merged = _merge_classes(metrics)
    if merged:
        lines.append(
            "merge rate (true objects the prediction joins to another): "
            + ", ".join(f"{name} {pct(e['merge_rate'])} % of {e['objects']}" for name, e in merged)
        )
    absent = metrics.get("absent_classes") or []
    if absent:
        lines.append(
            f"absent from truth and prediction, left out of the mean: {', '.join(map(str, absent))}"
        )
    return lines


def print_semantic_report(metrics: SemanticResult, *, title: str, console: Console) -> None:
    """Print the per-class table, the headline lines and any warnings."""
    console.print(semantic_table(metrics, title=title))
    for line in summary_lines(metrics):
        console.print(line)
    for warning in semantic_warnings(metrics):
        console.print(f"[yellow]warning:[/yellow] {warning}")


def semantic_markdown(metrics: SemanticResult, *, title: str) -> str:
    """The same report as Markdown."""
    out = [f"# {title}", ""]
    out += [f"- {line}" for line in summary_lines(metrics)]
    out += [f"- **warning**: {w}" for w in semantic_warnings(metrics)]
    out += [f"- **note**: {note}" for note in metrics.get("notes", [])]
    out += ["", "| class | IoU % | IoU 95 % CI | Dice % | boundary F1 % |"]
    out.append("|---|---:|---:|---:|---:|")
    for name, iou, dice, bf1 in per_class_rows(metrics):
        out.append(
            f"| {name} | {pct(iou)} | {class_interval(metrics, name)} | {pct(dice)} "
            f"| {pct(bf1) if bf1 is not None else '-'} |"
        )
    return "\n".join(out) + "\n"
