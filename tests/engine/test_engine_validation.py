"""Validation schedule and early stopping decide alone, from numbers they are given."""

from __future__ import annotations

from pixelseg.engine.validation import EarlyStopping, ValidationSchedule, improved


def test_schedule_every_k_epochs_and_after_the_last() -> None:
    schedule = ValidationSchedule(3)
    due = [epoch for epoch in range(1, 11) if schedule.due(epoch, last=epoch == 10)]
    assert due == [3, 6, 9, 10]
    assert [e for e in range(1, 4) if ValidationSchedule(0).due(e, last=False)] == [1, 2, 3]


def test_improvement_direction_follows_the_metric() -> None:
    assert improved(0.5, None, "miou")
    assert improved(0.6, 0.5, "miou") and not improved(0.5, 0.5, "miou")
    assert improved(0.4, 0.5, "loss") and not improved(0.6, 0.5, "val_loss")


def test_early_stopping_after_patience_validations() -> None:
    stopping = EarlyStopping("miou", patience=2)
    assert [stopping.should_stop(n) for n in range(4)] == [False, False, True, True]
