"""The evaluation report: every section for every task, intervals, warnings that do not flatter."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import torch

from pixelseg.cli import main
from pixelseg.metrics.confusion import ConfusionMatrix
from pixelseg.report.tables import semantic_warnings


def _embedded_images(page: str) -> list[str]:
    return re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)


def test_a_semantic_report_has_every_section(trained: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, _ = trained
    assert main(["evaluate", str(run_dir), "--json", str(tmp_path / "m.json")]) == 0
    folder = run_dir / "eval" / "val"
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert _embedded_images(page) == [
        "iou_bars.png", "gallery.png", "confusion.png", "curves.png"
    ]  # fmt: skip
    assert "IoU 95 % CI" in page and "bootstrap resamples" in page
    assert "majority-class baseline" in page
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "| class | IoU % | IoU 95 % CI |" in markdown


def test_a_watershed_report_is_a_page_with_its_pictures(
    tmp_path: Path, untrained_run: Callable[[str, Path], tuple[Path, Path]]
) -> None:
    run_dir, _ = untrained_run("watershed", tmp_path)
    assert main(["evaluate", str(run_dir)]) == 0
    folder = run_dir / "eval" / "val"
    page = (folder / "report.html").read_text(encoding="utf-8")
    counting = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["counting"]
    examples = ["merges_splits.png"] if counting["merges"] + counting["splits"] else []
    assert _embedded_images(page) == ["ap_by_threshold.png", "counts.png", *examples]
    assert "<table>" in page and "matching AP" in page


def _metrics(truth: torch.Tensor, predicted: torch.Tensor) -> dict:
    matrix = ConfusionMatrix(3, class_names=["background", "road", "car"])
    matrix.update(predicted[None], truth[None])
    return dict(matrix.compute())


def test_the_warnings_fire_on_an_all_background_model_and_not_on_a_good_one() -> None:
    torch.manual_seed(0)
    truth = torch.zeros(64, 64, dtype=torch.long)
    truth[:8] = 1  # 12.5 % road
    truth[60:, :4] = 2  # a few cars
    lazy = _metrics(truth, torch.zeros_like(truth))
    warnings = semantic_warnings(lazy)  # type: ignore[arg-type]
    assert any("majority class" in w for w in warnings)
    assert any("far below pixel accuracy" in w for w in warnings)
    good = truth.clone()
    good[torch.rand(64, 64) < 0.01] = 0  # 1 % of pixels wrong
    assert semantic_warnings(_metrics(truth, good)) == []  # type: ignore[arg-type]


def test_compare_puts_runs_side_by_side_with_their_intervals(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    run_dir, _ = trained
    out = tmp_path / "cmp"
    assert main(["compare", str(run_dir), str(run_dir), "--split", "val", "--out", str(out)]) == 0
    markdown = (out / "compare.md").read_text(encoding="utf-8")
    header, _, first = markdown.splitlines()[2:5]
    assert "differs from first?" in header and first.startswith("| mIoU |")
    cells = [c.strip() for c in first.strip("|").split("|")]
    assert cells[1] == cells[3] and cells[2] == cells[4]  # the same run twice
    assert cells[5] == "no"  # identical intervals overlap
    assert "<table>" in (out / "compare.html").read_text(encoding="utf-8")


def test_intervals_that_do_not_overlap_count_as_a_difference() -> None:
    from pixelseg.inference.compare import compare_table

    a = {"miou": 0.5, "per_class_iou": {}, "intervals": {"miou": [0.45, 0.55]}}
    b = {"miou": 0.7, "per_class_iou": {}, "intervals": {"miou": [0.65, 0.75]}}
    c = {"miou": 0.52, "per_class_iou": {}, "intervals": {"miou": [0.47, 0.57]}}
    table = compare_table(["a", "b", "c"], [a, b, c])
    assert table[1][0] == "mIoU" and table[1][5] == "yes" and table[1][8] == "no"
