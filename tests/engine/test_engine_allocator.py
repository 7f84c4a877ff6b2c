"""``pixelseg.engine.allocator``: freed step memory stays in the process (glibc on Linux)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

from pixelseg.engine import allocator

LINUX_GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _run(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter (the setting is process-wide) and return stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return result.stdout.strip()


def test_trim_threshold_is_an_eighth_of_memory_with_a_floor() -> None:
    assert allocator.trim_threshold(16 * 2**30) == 2 * 2**30
    assert allocator.trim_threshold(2**30) == 256 * 2**20


STEP_LIKE = """
import resource
import numpy as np
from pixelseg.engine.allocator import heap_setting, keep_freed_memory
line = keep_freed_memory()
assert keep_freed_memory() == line == heap_setting()

def step():
    # Like a training step's activations: many blocks alive together, then all freed.
    blocks = [np.ones(3_000_000, dtype=np.float32) for _ in range(8)]
    return sum(float(b.sum()) for b in blocks)

step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(line)
"""


@pytest.mark.skipif(not LINUX_GLIBC, reason="the setting only applies to glibc on Linux")
def test_setting_stops_refaulting_the_memory_of_each_step() -> None:
    # Ten "steps" of eight 12 MB blocks (23,400 pages of 4 KiB each step): glibc's defaults
    # trim much of the freed heap after every step, so each one faults pages in again.
    kept_faults, line = _run(STEP_LIKE).splitlines()
    default_faults, off = _run(STEP_LIKE, PIXELSEG_KEEP_HEAP="0").splitlines()
    assert int(default_faults) > 20_000, default_faults  # measured: 40,000-45,000
    assert int(kept_faults) < 2_000, kept_faults
    assert "mmap threshold 32 MiB" in line and "PIXELSEG_KEEP_HEAP=0" in line
    assert off == "None"


@pytest.mark.skipif(not LINUX_GLIBC, reason="the setting only applies to glibc on Linux")
def test_environment_switch_turns_it_off() -> None:
    out = _run(
        """
        from pixelseg.engine.allocator import heap_setting, keep_freed_memory
        print(keep_freed_memory(), heap_setting())
        """,
        PIXELSEG_KEEP_HEAP="0",
    )
    assert out == "None None"


@pytest.mark.parametrize(
    ("argv", "module", "command"),
    [
        (["evaluate", "run"], "pixelseg.inference.evaluate", "evaluate_command"),
        (["predict", "run", "image.png", "--out", "out"], "pixelseg.inference.predict",
         "predict_command"),
    ],
)  # fmt: skip
def test_evaluate_and_predict_commands_keep_freed_memory(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], module: str, command: str
) -> None:
    import importlib

    from pixelseg import cli

    calls: list[str] = []
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: calls.append("heap") or None)
    monkeypatch.setattr(
        importlib.import_module(module), command, lambda *a, **k: calls.append(command) or 0
    )
    args = cli.build_parser().parse_args(argv)
    assert args.func(args) == 0
    assert calls == ["heap", command]
