"""``bench/instance_report.py``: the DSB2018 tables come from the result files, verdicts are right.

Result dicts here are built by hand in the shape ``bench/instance_quality.py`` writes; the
training itself is exercised by ``make bench`` (too slow for the test suite).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
try:
    import instance_report
finally:
    sys.path.remove(str(REPO / "bench"))


def _result(method: str, seed: int, *, ap50: float, mae: float, merges: int) -> dict[str, Any]:
    return {
        "group": "instance",
        "method": method,
        "label": {"unet_watershed": "WS", "unet_cc": "CC", "cellpose": "CP"}[method],
        "seed": seed,
        "budget_s": 60.0,
        "probe": {"steps_per_second": 1.0},
        "steps": 10,
        "images_seen": 40,
        "epochs": 0.5,
        "train_seconds": 60.0,
        "eval_images_per_second": 2.0,
        "metrics": {
            "matching_ap_pooled": {"ap50": ap50, "mean": ap50 / 2},
            "matching_ap_per_image": {"ap50": ap50 - 0.1, "mean": ap50 / 3},
            "coco": {"AP": ap50 / 4},
            "counting": {"count_mae": mae, "merges": merges, "splits": 3},
            "postprocess": {"method": "connected_components", "threshold": 0.5},
        },
    }


def _results() -> list[dict[str, Any]]:
    return [
        _result("unet_watershed", 0, ap50=0.70, mae=2.0, merges=10),
        _result("unet_watershed", 1, ap50=0.74, mae=3.0, merges=14),
        _result("unet_cc", 0, ap50=0.60, mae=5.0, merges=12),
        _result("unet_cc", 1, ap50=0.60, mae=6.0, merges=12),
        _result("cellpose", 0, ap50=0.72, mae=4.0, merges=20),
        _result("cellpose", 1, ap50=0.50, mae=4.0, merges=20),
    ]


def test_quality_table_holds_mean_and_half_range_from_the_results(tmp_path: Path) -> None:
    text = "\n".join(instance_report.instance_section(_results(), tmp_path))

    # WS: AP50 pooled (70, 74) -> 72.0 ± 2.0; count MAE (2, 3) -> 2.50 ± 0.50; merges 12 ± 2.
    assert "| WS | 2 | 72.0 ± 2.0 | 36.0 ± 1.0 | 62.0 ± 2.0 |" in text
    assert "| 2.50 ± 0.50 | 12 ± 2 | 3 ± 0 |" in text
    assert "| CC | 2 | 60.0 ± 0.0 | 30.0 ± 0.0 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| WS |")]
    assert len(rows) == 2  # the quality table and the run table


def test_verdicts_need_every_seed_to_win(tmp_path: Path) -> None:
    lines = instance_report.instance_section(_results(), tmp_path)
    verdicts = {
        (cells[0], cells[1]): cells[-1]
        for cells in ([c.strip() for c in line.strip("| ").split(" | ")] for line in lines)
        if len(cells) == 7 and " vs " in cells[0]
    }
    # MAE: worst WS seed 3.0 < CC 5.0 -> wins; merges: worst WS 14 > CC 12 -> does not.
    assert verdicts[("WS vs CC", "count MAE")] == "yes"
    assert verdicts[("WS vs CC", "merges")] == "no"
    # AP50: worst WS 70 < best Cellpose 72 although the WS mean is higher -> no.
    assert verdicts[("WS vs CP", "AP50 pooled %")] == "no"


def test_one_seed_gives_no_verdict(tmp_path: Path) -> None:
    results = [r for r in _results() if not (r["method"] == "unet_cc" and r["seed"] == 1)]
    text = "\n".join(instance_report.instance_section(results, tmp_path))
    row = "| WS vs CC | count MAE | 2.50 vs 5.00 | -2.50 | 0.50 / 0.00 | 2 / 1 | — (one seed"
    assert row in text


@pytest.mark.parametrize("higher", [True, False])
def test_verdict_direction(higher: bool) -> None:
    diff, spread_a, spread_b, wins = instance_report._verdict(
        [1.0, 3.0], [4.0, 6.0], higher_is_better=higher
    )
    assert (diff, spread_a, spread_b) == (-3.0, 1.0, 1.0)
    assert wins == ("no" if higher else "yes")


def test_speed_section_reads_the_speed_file(tmp_path: Path) -> None:
    assert instance_report.speed_section(tmp_path) == []
    data = {
        "images": 2,
        "size": 256,
        "rounds": 3,
        "images_per_second": {"torchvision": 1.0, "pixelseg": 1.25, "pixelseg_label_image": 1.2},
        "ratio_pixelseg_over_torchvision": 1.25,
        "ratio_with_label_image": 1.2,
        "same_output_check": {
            "detections": [100, 100],
            "feature_max_difference": 1e-6,
            "input_max_difference": 0.0,
        },
    }
    (tmp_path / instance_report.SPEED_FILE).write_text(json.dumps(data))
    text = "\n".join(instance_report.speed_section(tmp_path))
    assert "| pixelseg `maskrcnn_resnet50_fpn` (coco layout) | 1.250 | 1.25 |" in text
    assert "detections 100 vs 100" in text
