"""The run clock sums resumed segments; the budget is spent on that sum."""

from __future__ import annotations

from pixelseg.engine.clock import Budget, Clock


class FakeTime:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_clock_counts_from_the_resumed_elapsed_time() -> None:
    now = FakeTime()
    clock = Clock(30.0, now=now)
    assert clock.elapsed() == 30.0
    now.t += 12.5
    assert clock.elapsed() == 42.5


def test_budget_fraction_and_exhaustion() -> None:
    now = FakeTime()
    clock = Clock(50.0, now=now)
    budget = Budget(clock, 100.0)
    assert budget.bounded and budget.fraction() == 0.5 and not budget.exhausted()
    now.t += 49.9
    assert not budget.exhausted()
    now.t += 0.1
    assert budget.exhausted() and budget.fraction() == 1.0


def test_no_budget_is_never_exhausted() -> None:
    now = FakeTime()
    for max_time in (None, 0.0):
        budget = Budget(Clock(now=now), max_time)
        now.t += 1e9
        assert not budget.bounded and budget.fraction() is None and not budget.exhausted()
