"""``bench/precision_speed.py``'s report section: one table per measured CPU, with a verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from precision_speed import precision_section


def _write(path: Path, cpu: str, amx: bool, fp32: float, bf16: float) -> None:
    rows = [{"what": "train step, x", "threads": 2, "fp32_s": fp32, "bf16_s": bf16}]
    data = {"machine": {"lscpu_model": cpu, "git_commit": "abcdef0123"}, "native_bf16": True}
    path.write_text(json.dumps({**data, "amx": amx, "rows": rows}), encoding="utf-8")


def test_each_cpu_gets_its_table_and_verdict(tmp_path: Path) -> None:
    """A CPU without AMX where bf16 was faster contradicts ``auto``; one with AMX agrees."""
    _write(tmp_path / "precision.json", "CPU A", False, 1.0, 0.5)
    _write(tmp_path / "precision_amx.json", "CPU B", True, 1.0, 0.5)
    text = "\n".join(precision_section(tmp_path))
    assert text.count("| What | Threads |") == 2
    a_line = next(line for line in text.splitlines() if line.startswith("CPU A"))
    b_line = next(line for line in text.splitlines() if line.startswith("CPU B"))
    assert "contradict" in a_line and "trains in fp32" in a_line
    assert "agrees" in b_line and "trains in bf16" in b_line
    assert "| train step, x | 2 | 1.000 | 0.500 | 0.50 |" in text


def test_no_measurement_no_section(tmp_path: Path) -> None:
    """Nothing measured: the report has no precision section."""
    assert precision_section(tmp_path) == []
