"""Learning-rate schedules: linear warmup then poly or cosine decay, as a pure function of progress.

The factor depends only on the step (and, under a wall-clock budget, the elapsed fraction), so
resuming needs no scheduler object state beyond the step.
"""

from __future__ import annotations

import math


def lr_factor(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int,
    schedule: str,
    progress: float | None = None,
    power: float = 0.9,
) -> float:
    """Multiplier of the base learning rate at ``step``.

    Args:
        step: optimizer steps taken so far.
        total_steps: planned steps (epochs x steps per epoch).
        warmup_steps: linear warmup length.
        schedule: ``"poly"``, ``"cosine"`` or ``"constant"``.
        progress: overrides ``step / total_steps`` (used with a wall-clock budget).
        power: exponent of the poly schedule.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if progress is None:
        span = max(1, total_steps - warmup_steps)
        progress = (step - warmup_steps) / span
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "poly":
        return max((1.0 - progress) ** power, 1e-3)
    if schedule == "cosine":
        return max(0.5 * (1.0 + math.cos(math.pi * progress)), 1e-3)
    return 1.0
