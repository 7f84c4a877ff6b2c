"""Validation by time, driven by a fake clock: at the expected points, within its share."""

from __future__ import annotations

from pixelseg.engine.validation import EarlyStopping, TimedValidation


def _simulate(budget: float, share: float, val_seconds: float) -> tuple[list[float], float]:
    """Steps of 1 s; validations of ``val_seconds``; the final one when the budget ends."""
    timed = TimedValidation(budget, share)
    now, at = 0.0, []
    while now + timed.reserve() < budget:
        now += 1.0
        if timed.due(now) and now + timed.reserve() < budget:
            at.append(now)
            timed.record(val_seconds, now=now + val_seconds)
            now += val_seconds
    at.append(now)  # the final validation
    timed.record(val_seconds, now=now + val_seconds)
    return at, timed.spent


def test_validations_happen_at_the_expected_points() -> None:
    at, spent = _simulate(100.0, 0.1, 2.0)
    # First at half the budget, then spaced by 2 * (1 - 0.1) / 0.1 = 18 s of training.
    assert at[:3] == [50.0, 70.0, 90.0]
    assert spent <= 0.1 * 100.0 + 1e-9


def test_expensive_validation_leaves_only_the_first_and_the_final() -> None:
    at, spent = _simulate(600.0, 0.1, 25.0)
    assert len(at) == 2 and at[0] == 300.0
    assert spent <= 60.0


def test_no_share_no_intermediate_validation() -> None:
    at, _ = _simulate(100.0, 0.0, 2.0)
    assert len(at) == 1


def test_patience_is_off_under_a_budget_unless_set() -> None:
    assert EarlyStopping.for_run("miou", None, budget=600.0).patience is None
    assert not EarlyStopping.for_run("miou", None, budget=600.0).should_stop(10_000)
    assert EarlyStopping.for_run("miou", None, budget=None).patience == 10
    assert EarlyStopping.for_run("miou", 3, budget=600.0).should_stop(3)
