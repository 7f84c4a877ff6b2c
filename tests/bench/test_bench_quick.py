"""``bench/run_all.py --quick`` end to end: trains, evaluates, writes result JSONs and the report.

The smoke mode trains on a few ISBI 2012 images for about a second per row; the peer rows (the
in-pipeline smp peer and the plain loop) run only where ``segmentation_models_pytorch`` is
installed (``pip install -e '.[bench]'``), since CI installs the dev extras only. The
time-to-quality rows train inside the benchmark split and are scored on its test split.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from conftest import REPO, shared_dataset

BENCH = REPO / "bench"


def _smp_installed() -> bool:
    try:
        import segmentation_models_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


HAS_SMP = _smp_installed()
REQUIRED = (
    "machine", "dataset", "model", "options", "budget_s", "seed", "split", "probe", "steps",
    "images_seen", "steps_per_second", "train_images_per_second", "eval_images_per_second",
    "metrics", "loss",
)  # fmt: skip


@pytest.mark.slow
def test_quick_mode_writes_results_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared_dataset("isbi2012-membrane")
    sys.path.insert(0, str(BENCH))
    try:
        import run_all
    finally:
        sys.path.remove(str(BENCH))
    results, report = tmp_path / "results", tmp_path / "benchmarks.md"
    argv = ["--quick", "--results-dir", str(results), "--report", str(report)]

    assert run_all.main(argv) == 0

    peers = {
        "headline__isbi2012__smp-unet-resnet34__s0",
        "time_to_quality__isbi2012__plain-smp-loop__s0",
        "time_to_quality__isbi2012__smp-unet-resnet34-in-pipeline-peer__s0",
    }
    expected = {
        "headline__isbi2012__pixelseg-default__s0",
        "upsampling__isbi2012__fcn-32s-bilinear__s0",
        "time_to_quality__isbi2012__pixelseg-default__s0",
    } | (peers if HAS_SMP else set())
    assert {p.stem for p in results.glob("*.json")} == expected
    for name in expected:
        result = json.loads((results / f"{name}.json").read_text())
        assert set(REQUIRED) <= set(result), name
        ttq = name.startswith("time_to_quality")
        assert result["dataset"] == "isbi2012" and result["split"] == ("test" if ttq else "val")
        assert result["machine"]["versions"]["torch"]
        assert result["machine"]["cpu"] and result["machine"]["git_commit"]
        assert result["steps"] >= 1 and result["images_seen"] == 2 * result["steps"]
        assert result["steps_per_second"] > 0 and result["probe"]["steps_per_second"] > 0
        metrics = result["metrics"]
        assert metrics["num_images"] == 1  # the quick val split: image 20; test: image 0
        ious = list(metrics["per_class_iou"].values())
        assert list(metrics["per_class_iou"]) == ["membrane", "cell"]
        assert math.isclose(metrics["miou"], sum(ious) / len(ious), rel_tol=1e-6)
        assert 0.0 <= metrics["pixel_accuracy"] <= 1.0
        assert 0.5 <= metrics["majority_baseline_accuracy"] <= 1.0
        assert 0.0 <= metrics["auc_roc"] <= 1.0 and metrics["boundary_f1"] is not None
        if ttq:
            assert result["split_sizes"] == {"train": 4, "val": 1, "test": 1}
            assert result["split_config"]["test"] == ["0"]
    peer_name = "headline__isbi2012__smp-unet-resnet34__s0"
    if HAS_SMP:
        peer = json.loads((results / f"{peer_name}.json").read_text())
        assert peer["model_config"]["name"] == "smp.Unet(resnet34)"
        assert peer["loss"]["weighting"] == "none"
        plain = json.loads(
            (results / "time_to_quality__isbi2012__plain-smp-loop__s0.json").read_text()
        )
        assert plain["checkpoint"] == "final weights" and plain["train"]["crop_size"] == 64
        assert plain["time_breakdown"]["fractions"]["steps"] > 0
        assert plain["probe"]["images_per_second"] > 0
    ours = json.loads(
        (results / "time_to_quality__isbi2012__pixelseg-default__s0.json").read_text()
    )
    assert ours["checkpoint"] == "best"

    text = report.read_text()
    pixelseg = json.loads((results / "headline__isbi2012__pixelseg-default__s0.json").read_text())
    assert "## Headline" in text and "## Machine" in text and "Quick smoke run" in text
    assert "## Ablation: FCN-32s" in text and "| ISBI 2012 | FCN-32s bilinear |" in text
    assert "## Time to quality" in text and "Time to quality (issue 14)" in text
    assert ("| ISBI 2012 | plain smp loop (peer) | 1 | 1 |" in text) == HAS_SMP
    assert f"| pixelseg default | 1 | {pixelseg['metrics']['miou'] * 100:.1f} |" in text
    assert ("smp Unet resnet34" in text) == HAS_SMP

    # A second run finds every result and trains nothing (what lets a killed `make bench` resume).
    stamps = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    capsys.readouterr()
    assert run_all.main(argv) == 0
    assert f"{len(expected)} already done" in capsys.readouterr().out
    assert stamps == {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
