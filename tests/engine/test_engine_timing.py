"""The time breakdown: every stretch of a run charged to a category, adding up to the wall time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pixelseg.config import load_config
from pixelseg.data.synthetic import write_synthetic_semantic
from pixelseg.engine.timing import CATEGORIES, TimeLedger, breakdown_line
from pixelseg.train import train


def test_ledger_charges_blocks_and_reports_the_remainder() -> None:
    now = [0.0]
    ledger = TimeLedger(now=lambda: now[0])
    with ledger.track("steps"):
        now[0] += 7.0
    with ledger.track("validation"):
        now[0] += 2.0
    breakdown = ledger.breakdown(10.0)
    assert breakdown["seconds"]["steps"] == 7.0 and breakdown["seconds"]["other"] == 1.0
    assert sum(breakdown["fractions"].values()) == pytest.approx(1.0)
    assert breakdown_line(breakdown).startswith("time (10 s): 70.0 % optimizer steps, 20.0 %")


def test_resumed_ledger_continues_the_recorded_seconds() -> None:
    spent = {"steps": 3.0}
    ledger = TimeLedger(spent)
    ledger.add("steps", 1.0)
    assert spent["steps"] == 4.0 and set(CATEGORIES) <= set(spent)


@pytest.mark.slow
def test_a_budgeted_run_accounts_for_its_wall_time(tmp_path: Path) -> None:
    config_path = write_synthetic_semantic(tmp_path / "data", n_images=8, size=48, seed=1)
    settings = [
        'model.name="unet"',
        "model.options={depth=2, base_width=8}",
        "train.crop_size=32",
        "train.batch_size=2",
        "train.samples_per_epoch=400",  # epochs of 200 steps, as real runs have
        "train.epochs=1000",
        "train.max_time=6",
        "train.val_share=0.2",
    ]
    summary = train(load_config(config_path, settings), tmp_path / "run")
    breakdown = summary.time_breakdown
    seconds = breakdown["seconds"]
    assert breakdown["wall_seconds"] == pytest.approx(summary.train_seconds)
    # Within 2 % of the wall time: what no category covers is small.
    assert seconds["other"] <= 0.02 * breakdown["wall_seconds"], breakdown
    assert seconds["steps"] > 0 and seconds["validation"] > 0 and seconds["startup"] > 0
    assert summary.train_seconds <= 6.0 + 1.0  # the budget holds, the final validation inside
    assert summary.validations >= 2  # intermediate (half the budget on) and final
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["time_breakdown"]["fractions"] == pytest.approx(breakdown["fractions"])
    assert written["startup_seconds"] == pytest.approx(seconds["startup"])
