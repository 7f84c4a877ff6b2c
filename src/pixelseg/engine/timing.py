"""Where the wall time of a run went: start-up, optimizer steps, data waits, validation...

Every stretch of the run is charged to one category by :meth:`TimeLedger.track`; what no
category covers is ``other``, so the breakdown always adds up to the wall time, and a small
``other`` shows the categories cover the run. The seconds are kept in the loop state, so a
resumed run reports the whole run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: The categories, in the order the log prints them.
CATEGORIES = (
    "startup",
    "steps",
    "data",
    "validation",
    "checkpoints",
    "logging",
    "post_training",
)
LABELS = {
    "startup": "start-up",
    "steps": "optimizer steps",
    "data": "data waits",
    "validation": "validation",
    "checkpoints": "checkpoints",
    "logging": "logging",
    "post_training": "post-training",
    "other": "other",
}


class TimeLedger:
    """Seconds per category of a run (resumed segments included).

    Args:
        spent: seconds per category already spent (a resumed run's), updated in place.
        now: the time function.
    """

    def __init__(
        self, spent: dict[str, float] | None = None, *, now: Callable[[], float] = time.perf_counter
    ) -> None:
        self.spent: dict[str, float] = spent if spent is not None else {}
        for category in CATEGORIES:
            self.spent.setdefault(category, 0.0)
        self.now = now

    def add(self, category: str, seconds: float) -> None:
        """Charge ``seconds`` to ``category``."""
        self.spent[category] += seconds

    @contextmanager
    def track(self, category: str) -> Iterator[None]:
        """Charge the time the ``with`` block takes to ``category``."""
        start = self.now()
        try:
            yield
        finally:
            self.add(category, self.now() - start)

    def breakdown(self, wall: float) -> dict[str, Any]:
        """Seconds and fractions per category of ``wall`` seconds, ``other`` the remainder."""
        seconds = {c: self.spent[c] for c in CATEGORIES}
        seconds["other"] = max(0.0, wall - sum(seconds.values()))
        total = max(wall, sum(seconds.values()), 1e-9)
        return {
            "wall_seconds": wall,
            "seconds": seconds,
            "fractions": {c: s / total for c, s in seconds.items()},
        }


def breakdown_line(breakdown: dict[str, Any]) -> str:
    """One log line: the share of each category that took time, largest first."""
    fractions = breakdown["fractions"]
    parts = [
        f"{100 * fraction:.1f} % {LABELS[category]}"
        for category, fraction in sorted(fractions.items(), key=lambda kv: -kv[1])
        if fraction >= 0.0005
    ]
    return f"time ({breakdown['wall_seconds']:.0f} s): " + ", ".join(parts)
