"""The DSB2018 instance section of ``docs/benchmarks.md`` (rows of ``bench/instance_quality.py``).

Spread over seeds is half the range; "beats by more than the spread" means every seed of the
winner is better than every seed of the other method (worst against best), as in the semantic
headline.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Result = dict[str, Any]
SPEED_FILE = "instance_speed.json"
METHOD_ORDER = ("unet_watershed", "cellpose", "unet_cc", "maskrcnn_align", "maskrcnn_pool")
QUALITY_HEADER = (
    "Method", "Seeds", "AP50 pooled %", "AP 0.50:0.95 pooled %", "AP50 per image %",
    "AP 0.50:0.95 per image %", "COCO mask AP %", "Count MAE", "Merges", "Splits",
)  # fmt: skip
RUN_HEADER = (
    "Method", "Probe steps/s", "Steps", "Images seen", "Epochs", "Train s", "Thresholds (val)",
    "Inference images/s",
)  # fmt: skip


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(line) + " |" for line in lines),
    ]


def _spread(values: Sequence[float], scale: float, fmt: str) -> str:
    kept = [v * scale for v in values if v is not None and not math.isnan(v)]
    if not kept:
        return "—"
    text = fmt.format(statistics.fmean(kept))
    if len(kept) > 1:
        text += " ± " + fmt.format((max(kept) - min(kept)) / 2)
    return text


def _get(result: Result, *keys: str) -> float:
    value: Any = result["metrics"]
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return math.nan if value is None else float(value)


def _by_method(results: Sequence[Result]) -> dict[str, list[Result]]:
    rows = [r for r in results if r.get("group") == "instance"]
    grouped: dict[str, list[Result]] = {}
    for method in (*METHOD_ORDER, *sorted({r["method"] for r in rows})):
        found = sorted((r for r in rows if r["method"] == method), key=lambda r: r["seed"])
        if found and method not in grouped:
            grouped[method] = found
    return grouped


def _thresholds(result: Result) -> str:
    post = result["metrics"].get("postprocess") or {}
    method = post.get("method")
    if method == "watershed":
        return f"fg {post.get('foreground_threshold')}, interior {post.get('interior_threshold')}"
    if method == "connected_components":
        return f"fg {post.get('threshold')}"
    if method == "cellpose":
        return f"cellprob {post.get('cellprob_threshold')}, flow {post.get('flow_threshold')}"
    tuned = result["metrics"].get("thresholds")  # Mask R-CNN: {"score": ..., "mask": ...}
    if isinstance(tuned, dict) and "score" in tuned:
        return f"score {tuned['score']}, mask {tuned['mask']}"
    return "—"


def _quality_line(label: str, rows: list[Result]) -> list[str]:
    def col(*keys: str, scale: float = 100.0, fmt: str = "{:.1f}") -> str:
        return _spread([_get(r, *keys) for r in rows], scale, fmt)

    return [
        label,
        str(len(rows)),
        col("matching_ap_pooled", "ap50"),
        col("matching_ap_pooled", "mean"),
        col("matching_ap_per_image", "ap50"),
        col("matching_ap_per_image", "mean"),
        col("coco", "AP"),
        col("counting", "count_mae", scale=1.0, fmt="{:.2f}"),
        col("counting", "merges", scale=1.0, fmt="{:.0f}"),
        col("counting", "splits", scale=1.0, fmt="{:.0f}"),
    ]


def _run_line(label: str, rows: list[Result]) -> list[str]:
    def mean(get: Callable[[Result], float], fmt: str) -> str:
        return _spread([get(r) for r in rows], 1.0, fmt)

    return [
        label,
        mean(lambda r: r["probe"]["steps_per_second"], "{:.2f}"),
        mean(lambda r: r["steps"], "{:.0f}"),
        mean(lambda r: r["images_seen"], "{:.0f}"),
        mean(lambda r: r["epochs"], "{:.1f}"),
        mean(lambda r: r["train_seconds"], "{:.0f}"),
        "; ".join(dict.fromkeys(_thresholds(r) for r in rows)),
        mean(lambda r: r["eval_images_per_second"], "{:.2f}"),
    ]


def _verdict(
    ours: list[float], theirs: list[float], *, higher_is_better: bool
) -> tuple[float, float, float, str]:
    """Mean difference, the two spreads, and whether ours wins beyond the spread."""
    diff = statistics.fmean(ours) - statistics.fmean(theirs)
    spread_ours = (max(ours) - min(ours)) / 2
    spread_theirs = (max(theirs) - min(theirs)) / 2
    wins = min(ours) > max(theirs) if higher_is_better else max(ours) < min(theirs)
    return diff, spread_ours, spread_theirs, "yes" if wins else "no"


def _target_lines(grouped: dict[str, list[Result]]) -> list[list[str]]:
    pooled, per_image = ("matching_ap_pooled", "ap50"), ("matching_ap_per_image", "ap50")
    checks = (
        ("unet_watershed", "unet_cc", ("counting", "count_mae"), "count MAE", False, 1.0),
        ("unet_watershed", "unet_cc", ("counting", "merges"), "merges", False, 1.0),
        ("unet_watershed", "cellpose", pooled, "AP50 pooled %", True, 100.0),
        ("unet_watershed", "cellpose", per_image, "AP50 per image %", True, 100.0),
        ("maskrcnn_align", "maskrcnn_pool", ("coco", "AP"), "COCO mask AP %", True, 100.0),
        ("maskrcnn_align", "maskrcnn_pool", pooled, "AP50 pooled %", True, 100.0),
    )
    lines = []
    for ours, theirs, keys, name, higher, scale in checks:
        if ours not in grouped or theirs not in grouped:
            continue
        a = [_get(r, *keys) * scale for r in grouped[ours]]
        b = [_get(r, *keys) * scale for r in grouped[theirs]]
        diff, sa, sb, wins = _verdict(a, b, higher_is_better=higher)
        if min(len(a), len(b)) < 2:
            wins = "— (one seed: no spread)"
        lines.append(
            [
                f"{grouped[ours][0]['label']} vs {grouped[theirs][0]['label']}",
                name,
                f"{statistics.fmean(a):.2f} vs {statistics.fmean(b):.2f}",
                f"{diff:+.2f}",
                f"{sa:.2f} / {sb:.2f}",
                f"{len(a)} / {len(b)}",
                wins,
            ]
        )
    return lines


def speed_section(results_dir: Path) -> list[str]:
    """pixelseg's Mask R-CNN R50-FPN inference against torchvision's (``instance_speed.py``)."""
    path = results_dir / SPEED_FILE
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    speed = data["images_per_second"]
    check = data["same_output_check"]
    return [
        "### Inference speed: Mask R-CNN ResNet-50-FPN, pixelseg vs torchvision",
        "",
        f"Same process, same {data['images']} DSB2018 test images at {data['size']} × "
        f"{data['size']} px, same architecture and weights (torchvision's random initialisation "
        "copied into pixelseg's model; `box_score_thresh=0` so 100 detections per image reach "
        f"the mask head), median of {data['rounds']} alternating rounds "
        "(`bench/instance_speed.py`). Same function: largest difference of the FPN features "
        f"{check['feature_max_difference']:.2g} (inputs {check['input_max_difference']:.2g}); "
        f"detections {check['detections'][0]} vs {check['detections'][1]}.",
        "",
        *_table(
            ("Model", "Images/s", "Ratio to torchvision"),
            [
                ["torchvision `maskrcnn_resnet50_fpn`", f"{speed['torchvision']:.3f}", "1.00"],
                [
                    "pixelseg `maskrcnn_resnet50_fpn` (coco layout)",
                    f"{speed['pixelseg']:.3f}",
                    f"{data['ratio_pixelseg_over_torchvision']:.2f}",
                ],
                [
                    "pixelseg, with the instance label image",
                    f"{speed['pixelseg_label_image']:.3f}",
                    f"{data['ratio_with_label_image']:.2f}",
                ],
            ],
        ),
        "",
    ]


def instance_section(results: Sequence[Result], results_dir: Path) -> list[str]:
    """Quality, run and target tables of the DSB2018 instance benchmark, then inference speed."""
    grouped = _by_method(results)
    out: list[str] = []
    if grouped:
        budgets = sorted({r["budget_s"] for rows in grouped.values() for r in rows})
        labels = {m: rows[0]["label"] for m, rows in grouped.items()}
        budget = ", ".join(f"{b:g}" for b in budgets)
        quality = [_quality_line(labels[m], rows) for m, rows in grouped.items()]
        out += [
            "## Instance segmentation: DSB2018 nuclei (test split)",
            "",
            f"Every method trains from random initialisation for {budget} s of "
            "wall clock on the train split of `configs/dsb2018_*.toml` (hash split 70/15/15: "
            "301 / 58 / 64 images), picks its thresholds (and, for pixelseg, its best epoch) on "
            "val, and is scored on test, which nobody tuned on, by pixelseg's "
            "`InstanceEvaluator` (matching AP as StarDist pools it and as the Kaggle DSB2018 "
            "averages it per image; COCO mask AP by faster-coco-eval, which the tests check "
            "against pycocotools, with the detection limit raised to the most objects in an "
            "image). Inference images/s include post-processing and scoring. The peer is "
            "Cellpose 3 (`bench/peer_cellpose.py`) with its own training recipe, from scratch, "
            "its learning-rate schedule fitted to the budget, flows computed before its clock "
            "starts.",
            "",
            *_table(QUALITY_HEADER, quality),
            "",
            "mean ± half the range over seeds.",
            "",
            *_table(RUN_HEADER, [_run_line(labels[m], rows) for m, rows in grouped.items()]),
            "",
            "Probe steps/s: training speed measured before the run (pixelseg: real training "
            "crops, loading excluded; Cellpose: a synthetic batch of its shape). Epochs: pixelseg "
            "counts the epochs begun (the budget cuts the last one), Cellpose images seen / "
            "training images. Train s: pixelseg's clock includes its validation passes (and the "
            "last one, after the budget); Cellpose's has none.",
            "",
        ]
        targets = _target_lines(grouped)
        if targets:
            out += [
                "Targets (wins beyond the spread: every seed of the first method better than "
                "every seed of the second):",
                "",
                *_table(
                    ("Comparison", "Metric", "Means", "Difference", "Spreads", "Seeds", "Wins"),
                    targets,
                ),
                "",
            ]
    return out + speed_section(results_dir)
