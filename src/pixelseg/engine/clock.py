"""The run's clock and its wall-clock budget, summed over resumes.

A run killed and resumed keeps counting from the elapsed time its checkpoint recorded, so
``--max-time`` bounds the whole run, not each piece of it. The clock reads a time function
(``time.perf_counter`` by default) so that tests can drive it by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Clock:
    """Seconds of the run so far: ``start`` (from a checkpoint) plus this process's time.

    Args:
        start: seconds already spent before this process (a resumed run's).
        now: the time function (monotonic seconds).
    """

    def __init__(self, start: float = 0.0, *, now: Callable[[], float] = time.perf_counter) -> None:
        self.start = start
        self.now = now
        self._origin = now()

    def elapsed(self) -> float:
        """Seconds of the run, resumed segments included."""
        return self.start + self.now() - self._origin


class Budget:
    """A wall-clock budget over a :class:`Clock` (``max_time`` None or 0: unbounded).

    Args:
        clock: the run's clock.
        max_time: seconds the run may take, validation and checkpoints included.
    """

    def __init__(self, clock: Clock, max_time: float | None) -> None:
        self.clock = clock
        self.max_time = max_time or None

    @property
    def bounded(self) -> bool:
        """True when there is a budget."""
        return self.max_time is not None

    def fraction(self) -> float | None:
        """The fraction of the budget spent (may exceed 1), or None when unbounded."""
        if self.max_time is None:
            return None
        return self.clock.elapsed() / self.max_time

    def exhausted(self) -> bool:
        """True once the budget is spent."""
        fraction = self.fraction()
        return fraction is not None and fraction >= 1.0
