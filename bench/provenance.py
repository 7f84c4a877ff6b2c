"""Where and from what a benchmark row was measured: its CPU class and its commit.

Rows of one table may come from different sessions, and the CPU changes between sessions (an
AVX2-only EPYC takes about three times as long per training step as an AVX-512 one), so each
row of the time-to-quality tables names its own machine and commit. Only rows measured on one
CPU compare by their step counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def cpu_class(machine: Mapping[str, Any]) -> str:
    """The CPU's model and the widest vector / matrix unit its ``lscpu`` flags show.

    Args:
        machine: a result's ``machine`` dict (``cpu`` and ``cpu_flags``).

    Returns:
        e.g. ``"AMD EPYC, AVX2 only"``, ``"AMD EPYC, AVX-512 BF16"`` or
        ``"Intel(R) Xeon(R) Processor, AMX"``; the model alone when no flags were recorded.
    """
    model = str(machine.get("cpu") or machine.get("lscpu_model") or "unknown CPU")
    flags = set(machine.get("cpu_flags") or [])
    if not flags:
        return model
    if "amx_bf16" in flags:  # the flag pixelseg's precision rule reads
        unit = "AMX"
    elif "avx512_bf16" in flags:
        unit = "AVX-512 BF16"
    elif "avx512f" in flags:
        unit = "AVX-512"
    elif "avx2" in flags:
        unit = "AVX2 only"
    else:
        unit = "no AVX2"
    return f"{model}, {unit}"


def measured_on(rows: Sequence[Mapping[str, Any]]) -> str:
    """CPU class and short commit of a group of rows (seeds), each distinct pair once."""
    pairs = []
    for row in rows:
        machine = row.get("machine") or {}
        commit = str(machine.get("git_commit") or "?")[:7]
        pairs.append(f"{cpu_class(machine)} @ {commit}")
    return "; ".join(dict.fromkeys(pairs))
