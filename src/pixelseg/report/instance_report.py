"""Instance metric tables for the console and Markdown (watershed and Mask R-CNN alike).

The input is :meth:`pixelseg.metrics.instance.InstanceEvaluator.compute`'s dict (extra keys are
ignored): matching AP pooled over the split and as the mean of per-image scores, named as such;
COCO mask AP with a note when the detections-per-image limit was raised; counting errors.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from pixelseg.metrics.results import CocoResult, CountingResult, InstanceResult, MatchingSummary

_COCO_KEYS = (
    ("AP", "AP"),
    ("AP50", "AP50"),
    ("AP75", "AP75"),
    ("AP_small", "AP S"),
    ("AP_medium", "AP M"),
    ("AP_large", "AP L"),
)
_MATCHING = (
    ("matching_ap_pooled", "pooled over the split"),
    ("matching_ap_per_image", "mean of per-image scores"),
)
MATCHING_NOTE = (
    "matching AP = TP / (TP + FP + FN), one-to-one matching by IoU; pooled: TP, FP and FN "
    "summed over the split first (StarDist's way); mean of per-image scores: Kaggle DSB2018's way"
)


def pct(value: Any) -> str:
    """A fraction as a percentage with two decimals, or "-" when missing."""
    return "-" if value is None else f"{100 * float(value):.2f}"


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{float(value):.{digits}f}"


def matching_rows(result: InstanceResult) -> list[tuple[str, str, str, str]]:
    """``(name, AP@0.50 %, AP@0.75 %, mean AP@0.50:0.05:0.95 %)`` rows, pooled then per image."""
    rows = []
    empty: MatchingSummary = {}
    pooled, per_image = result.get("matching_ap_pooled"), result.get("matching_ap_per_image")
    for scores, (_, name) in zip((pooled or empty, per_image or empty), _MATCHING):
        per_threshold = scores.get("per_threshold") or {}
        rows.append(
            (
                name,
                pct(scores.get("ap50")),
                pct(per_threshold.get("0.75")),
                pct(scores.get("mean")),
            )
        )
    return rows


def coco_note(coco: CocoResult) -> str:
    """The maxDets line: raised above COCO's 100 (and to what), or COCO's default."""
    limit = coco.get("max_detections")
    if coco.get("max_detections_raised"):
        return (
            f"maxDets raised from COCO's 100 to {limit}: images hold more objects, and the "
            "default would cut them"
        )
    return f"maxDets {limit} (COCO's default)"


def counting_lines(counting: CountingResult | None) -> list[str]:
    """Count MAE, mean relative count error, object totals, merges and splits."""
    if counting is None:
        return []
    return [
        f"count MAE {_num(counting.get('count_mae'))} objects per image; mean relative count "
        f"error {pct(counting.get('count_mean_relative_error'))} %",
        f"objects: {counting.get('true_objects', '-')} true, {counting.get('pred_objects', '-')} "
        f"predicted; merges {counting.get('merges', '-')} (one prediction covering >= 50 % of "
        f"two or more true objects), splits {counting.get('splits', '-')} (the reverse)",
    ]


def interval_line(result: InstanceResult) -> str:
    """The pooled AP50's bootstrap interval over images, or ``""`` when not computed."""
    intervals = result.get("intervals") or {}
    low_high = intervals.get("ap50_pooled")
    if not low_high or any(v != v for v in low_high):  # NaN
        return ""
    return (
        f"pooled AP50 {100 * intervals['level']:.0f} % CI {pct(low_high[0])}–{pct(low_high[1])} % "
        f"over {intervals['images']} images ({intervals['resamples']} bootstrap resamples)"
    )


def print_instance_report(result: InstanceResult, *, title: str, console: Console) -> None:
    """Print matching AP (pooled and per image), COCO mask AP and counting errors.

    Args:
        result: the instance evaluator's dict (``matching_ap_pooled``,
            ``matching_ap_per_image``, ``counting`` and optionally ``coco``).
        title: the table title (run and split).
        console: where to print.
    """
    table = Table(title=title, show_edge=False)
    for column in ("matching AP", "IoU 0.50 %", "IoU 0.75 %", "mean 0.50:0.05:0.95 %"):
        table.add_column(column, justify="left" if column == "matching AP" else "right")
    for row in matching_rows(result):
        table.add_row(*row)
    console.print(table)
    console.print(MATCHING_NOTE, soft_wrap=True)
    spread = interval_line(result)
    if spread:
        console.print(spread, soft_wrap=True)
    coco = result.get("coco")
    if coco is not None:
        values = ", ".join(f"{label} {pct(coco.get(key))}" for key, label in _COCO_KEYS)
        console.print(f"COCO mask AP %: {values} ({coco_note(coco)})", soft_wrap=True)
    for line in counting_lines(result.get("counting")):
        console.print(line, soft_wrap=True)


def instance_markdown(result: InstanceResult, *, title: str) -> str:
    """The same report as Markdown."""
    out = [
        f"# {title}",
        "",
        MATCHING_NOTE[0].upper() + MATCHING_NOTE[1:] + ".",
        "",
        "| matching AP | IoU 0.50 % | IoU 0.75 % | mean 0.50:0.05:0.95 % |",
        "|---|---:|---:|---:|",
    ]
    out += [
        f"| {name} | {ap50} | {ap75} | {mean} |" for name, ap50, ap75, mean in matching_rows(result)
    ]
    out.append("")
    if interval_line(result):
        out += [f"- {interval_line(result)}", ""]
    coco = result.get("coco")
    if coco is not None:
        out += [
            "| COCO mask | " + " | ".join(label for _, label in _COCO_KEYS) + " |",
            "|---|" + "---:|" * len(_COCO_KEYS),
            "| % | " + " | ".join(pct(coco.get(key)) for key, _ in _COCO_KEYS) + " |",
            "",
            f"- {coco_note(coco)}",
        ]
    out += [f"- {line}" for line in counting_lines(result.get("counting"))]
    out += [f"- **note**: {note}" for note in result.get("notes", [])]
    return "\n".join(out) + "\n"
