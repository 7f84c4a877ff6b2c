"""``bench/run_all.py``: every row runs in a fresh process, with the parent's budgets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
try:
    import run_all
finally:
    sys.path.remove(str(REPO / "bench"))

ROW = "time_to_quality__drive__pixelseg-default__s0"


def _main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, returncode: int) -> tuple[int, list]:
    calls: list[list[str]] = []
    real_run = subprocess.run

    def fake_run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        if command[0] != sys.executable:  # git, asked for the commit
            return real_run(command, **kwargs)
        calls.append(command)
        return subprocess.CompletedProcess(command, returncode)

    monkeypatch.setattr(run_all.subprocess, "run", fake_run)
    monkeypatch.setattr(run_all, "generate", lambda *args, **kwargs: tmp_path / "report.md")
    argv = ["--only", ROW, "--ttq-budget", "5", "--results-dir", str(tmp_path)]
    return run_all.main(argv), calls


def test_each_row_runs_in_its_own_process_with_the_parents_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, calls = _main(monkeypatch, tmp_path, returncode=0)
    assert code == 0
    assert len(calls) == 1
    command = calls[0]
    assert command[0] == sys.executable and command[1].endswith("run_all.py")
    assert command[command.index("--row") + 1] == ROW
    assert command[command.index("--ttq-budget") + 1] == "5.0"
    assert command[command.index("--results-dir") + 1] == str(tmp_path)


def test_a_failed_row_process_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, calls = _main(monkeypatch, tmp_path, returncode=1)
    assert code == 1 and len(calls) == 1


def test_an_unknown_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        run_all.main(["--row", "no-such-row", "--results-dir", str(tmp_path)])
    assert raised.value.code == 2
