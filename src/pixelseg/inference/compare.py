"""``pixelseg compare``: runs side by side on one split, with intervals that say what is real.

Each run is evaluated on the split as ``pixelseg evaluate`` would (its own data unless
``--data``), and the headline — mIoU and each class's IoU for semantic runs, the pooled AP50 for
instance runs — is put beside the others with its 95 % bootstrap interval over images. A
difference to the first run counts as shown only when the two intervals do not overlap
(conservative: overlapping intervals can still hide a real difference, never the reverse).
Writes ``compare.json``, ``compare.md`` and a self-contained ``compare.html`` into ``--out``.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pixelseg.files import atomic_write_json, atomic_write_text
from pixelseg.inference.evaluate import evaluate_run
from pixelseg.report.tables import interval_text, pct


def _rows(result: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(what, value, [low, high])`` of one run's headline."""
    intervals = result.get("intervals") or {}
    if "miou" in result:
        rows = [("mIoU", result["miou"], intervals.get("miou"))]
        per_class = intervals.get("per_class_iou", {})
        rows += [
            (f"IoU {name}", value, per_class.get(name))
            for name, value in result.get("per_class_iou", {}).items()
        ]
        return rows
    pooled = (result.get("matching_ap_pooled") or {}).get("ap50")
    return [("pooled AP50", pooled, intervals.get("ap50_pooled"))]


def _separate(a: Any, b: Any) -> str:
    """``"yes"`` when the intervals do not overlap, ``"no"`` when they do, ``"-"`` unknown."""
    if not a or not b or any(v is None or math.isnan(float(v)) for v in (*a, *b)):
        return "-"
    return "yes" if a[1] < b[0] or b[1] < a[0] else "no"


def compare_table(names: list[str], results: list[dict[str, Any]]) -> list[list[str]]:
    """Header and rows: each metric, each run's value and interval, and for every run after
    the first whether its interval leaves the first run's."""
    header = ["metric"]
    for index, name in enumerate(names):
        header += [f"{name} %", f"{name} 95 % CI"] + (["differs from first?"] if index else [])
    table = [header]
    per_run = [_rows(result) for result in results]
    for position, (what, _, _) in enumerate(per_run[0]):
        row = [what]
        first = per_run[0][position][2]
        for index, rows in enumerate(per_run):
            match = [r for r in rows if r[0] == what]
            value, band = (match[0][1], match[0][2]) if match else (None, None)
            row += [pct(value), interval_text(band)]
            if index:
                row.append(_separate(first, band))
        table.append(row)
    return table


def _markdown(table: list[list[str]], split: str) -> str:
    out = [f"# compare: {split} split", ""]
    out.append("| " + " | ".join(table[0]) + " |")
    out.append("|---|" + "---:|" * (len(table[0]) - 1))
    out += ["| " + " | ".join(row) + " |" for row in table[1:]]
    return "\n".join(out) + "\n"


def _html(table: list[list[str]], split: str) -> str:
    cells = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
    body = [f"<tr>{cells}</tr>"]
    for row in table[1:]:
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
    return (
        f"<!doctype html><meta charset='utf-8'><title>compare: {html.escape(split)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em}</style>"
        f"<h1>compare: {html.escape(split)} split</h1><table>{''.join(body)}</table>\n"
    )


def compare_command(
    runs: list[str], *, split: str, out: str, data: str | None = None, device: str = "auto"
) -> int:
    """The ``pixelseg compare`` subcommand."""
    names = [Path(run).name for run in runs]
    results = [dict(evaluate_run(run, data=data, split=split, device=device)) for run in runs]
    kinds = {"miou" in result for result in results}
    if len(kinds) > 1:
        from pixelseg.errors import ConfigError

        raise ConfigError("compare needs runs of one kind: semantic, or instance/watershed")
    table = compare_table(names, results)
    folder = Path(out)
    atomic_write_json(folder / "compare.json", {"runs": runs, "split": split, "table": table})
    atomic_write_text(folder / "compare.md", _markdown(table, split))
    atomic_write_text(folder / "compare.html", _html(table, split))
    console = Console(highlight=False)
    shown = Table(title=f"{split} split", show_edge=False)
    for column in table[0]:
        shown.add_column(column, justify="left" if column == "metric" else "right")
    for row in table[1:]:
        shown.add_row(*row)
    console.print(shown)
    console.print(f"tables in {folder}")
    return 0
