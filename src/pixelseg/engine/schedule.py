"""Learning-rate schedules: linear warmup then poly or cosine decay, as a pure function of progress.

Progress is the fraction of the run done: of the planned steps, or under a wall-clock budget
of the time available for training, whichever is further. Warmup and decay are both defined on
it (``train.warmup_fraction``), so a 120-step run is not spent warming up for 50 steps; an
explicit ``train.warmup_steps`` still counts steps. Resuming needs no scheduler object state.
"""

from __future__ import annotations

import math


def lr_factor(
    step: int,
    *,
    progress: float,
    warmup_steps: int = 0,
    warmup_fraction: float = 0.0,
    schedule: str = "poly",
    power: float = 0.9,
) -> float:
    """Multiplier of the base learning rate at ``step``.

    Args:
        step: optimizer steps taken so far.
        progress: the fraction of the run done, in ``[0, 1]``.
        warmup_steps: linear warmup over this many steps (0: use ``warmup_fraction``).
        warmup_fraction: linear warmup over this fraction of the run.
        schedule: ``"poly"``, ``"cosine"`` or ``"constant"``.
        power: exponent of the poly schedule.
    """
    progress = min(max(progress, 0.0), 1.0)
    if warmup_steps > 0:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
    elif warmup_fraction > 0 and progress < warmup_fraction:
        return max(progress / warmup_fraction, 1e-3)
    start = 0.0 if warmup_steps > 0 else warmup_fraction
    decay = (progress - start) / max(1.0 - start, 1e-9)
    if schedule == "poly":
        return max((1.0 - decay) ** power, 1e-3)
    if schedule == "cosine":
        return max(0.5 * (1.0 + math.cos(math.pi * decay)), 1e-3)
    return 1.0
