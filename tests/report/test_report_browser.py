"""The evaluation report opened in a real browser: every image loads, every table is there.

Headless Chromium (Debian's ``chromium``; ``make test`` installs it where it can) loads
``report.html`` from disk with a script that records each image's ``naturalWidth``, dumps the
DOM and takes a screenshot. Where Chromium is missing the test skips saying why — with
``CI=true`` it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pixelseg.cli import main

PROBE = (
    "<script>window.addEventListener('load', () => document.body.setAttribute("
    "'data-widths', Array.from(document.images).map(i => i.naturalWidth).join(',')));</script>"
)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (make test installs it with apt-get as root)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI=true requires it")
        pytest.skip(message)
    return found


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000",
    ]  # fmt: skip
    return subprocess.run(
        [browser, *flags, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
def test_the_report_renders_in_headless_chromium(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    browser = _chromium()
    run_dir, _ = trained
    report = tmp_path / "report"
    assert main(["evaluate", str(run_dir), "--report", str(report)]) == 0
    page = (report / "report.html").read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page + PROBE, encoding="utf-8")
    dumped = _run(browser, tmp_path / "profile", "--dump-dom", probed.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    widths = re.search(r'data-widths="([^"]*)"', dumped.stdout)
    assert widths is not None, "the load script did not run"
    sizes = [int(w) for w in widths.group(1).split(",")]
    assert len(sizes) == page.count("<img") >= 4 and all(w > 0 for w in sizes)
    assert dumped.stdout.count("<table") >= 1 and "IoU 95 % CI" in dumped.stdout
    shot = tmp_path / "report.png"
    taken = _run(browser, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,1600",
                 probed.as_uri())  # fmt: skip
    assert taken.returncode == 0 and shot.stat().st_size > 10_000
