"""A self-contained HTML page of an evaluation: headline lines, per-class table, pictures."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pixelseg.metrics.results import SemanticResult
from pixelseg.report.tables import pct, per_class_rows, semantic_warnings, summary_lines

_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
    "td.n{text-align:right}.warn{color:#a60}img{max-width:100%}"
)


def _embed(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def semantic_html(metrics: SemanticResult, *, title: str, images: list[Path]) -> str:
    """The page: mIoU first, pixel accuracy beside its baseline, warnings, per-class IoU / Dice /
    boundary F1 sorted by IoU, then the PNGs in ``images`` embedded (so the file stands alone).
    """
    out = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    out.append(f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1><ul>")
    out += [f"<li>{html.escape(line)}</li>" for line in summary_lines(metrics)]
    out += [f"<li class='warn'>warning: {html.escape(w)}</li>" for w in semantic_warnings(metrics)]
    out += [f"<li class='warn'>note: {html.escape(n)}</li>" for n in metrics.get("notes", [])]
    out.append("</ul><table><tr><th>class</th><th>IoU %</th><th>Dice %</th>")
    out.append("<th>boundary F1 %</th></tr>")
    for name, iou, dice, bf1 in per_class_rows(metrics):
        cells = [
            pct(iou),
            pct(dice),
            pct(bf1) if bf1 is not None else "-",
        ]
        row = "".join(f"<td class='n'>{c}</td>" for c in cells)
        out.append(f"<tr><td>{html.escape(name)}</td>{row}</tr>")
    out.append("</table>")
    out += [_embed(p) for p in images if p.is_file()]
    return "\n".join(out) + "\n"
