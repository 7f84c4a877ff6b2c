"""A self-contained HTML page of an evaluation: headline lines, per-class table, pictures."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from pixelseg.metrics.results import SemanticResult
from pixelseg.report.evaluation_figures import FIGURES
from pixelseg.report.tables import (
    class_interval,
    pct,
    per_class_rows,
    semantic_warnings,
    summary_lines,
)

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
    out.append("</ul><table><tr><th>class</th><th>IoU %</th><th>IoU 95 % CI</th><th>Dice %</th>")
    out.append("<th>boundary F1 %</th></tr>")
    for name, iou, dice, bf1 in per_class_rows(metrics):
        cells = [
            pct(iou),
            class_interval(metrics, name),
            pct(dice),
            pct(bf1) if bf1 is not None else "-",
        ]
        row = "".join(f"<td class='n'>{c}</td>" for c in cells)
        out.append(f"<tr><td>{html.escape(name)}</td>{row}</tr>")
    out.append("</table>")
    out += [_embed(p) for p in images if p.is_file()]
    return "\n".join(out) + "\n"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_page(markdown: str, *, title: str, images: list[Path]) -> str:
    """A self-contained page of a report written as Markdown (the subset pixelseg writes:
    ``#`` headings, ``-`` items, ``|`` tables, paragraphs), the PNGs in ``images`` embedded."""
    out = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    out.append(f"<style>{_STYLE}</style>")
    in_list = in_table = False
    for line in markdown.splitlines():
        is_item, is_row = line.startswith("- "), line.startswith("|")
        if in_list and not is_item:
            out.append("</ul>")
            in_list = False
        if in_table and not is_row:
            out.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 3)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif is_item:
            if not in_list:
                out.append("<ul>")
                in_list = True
            text = line[2:].replace("**", "")
            warn = " class='warn'" if text.startswith(("warning", "note")) else ""
            out.append(f"<li{warn}>{html.escape(text)}</li>")
        elif is_row:
            cells = _cells(line)
            if all(set(c) <= set("-:") for c in cells):
                continue  # the header's separator row
            tag = "th" if not in_table else "td"
            if not in_table:
                out.append("<table>")
                in_table = True
            out.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
            )
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    out.append("</ul>" if in_list else "")
    out.append("</table>" if in_table else "")
    out += [_embed(p) for p in images if p.is_file()]
    return "\n".join(out) + "\n"


def report_page(markdown: str, title: str, writer: Any, folder: str) -> str:
    """:func:`markdown_page` with the figures of :data:`FIGURES` found under ``folder`` of the
    run (``writer``: the run's :class:`~pixelseg.engine.writer.RunWriter`)."""
    images = [writer.path(f"{folder}/{name}") for name in FIGURES]
    return markdown_page(markdown, title=title, images=images)
