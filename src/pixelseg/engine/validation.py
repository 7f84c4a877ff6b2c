"""When to validate, and what counts as better: the validation schedules and early stopping.

Without a budget, validation follows the epochs (``train.val_every``) or the steps
(``train.val_every_steps``). Under ``--max-time`` it follows the clock: validation may take at
most ``train.val_share`` of the budget, the final one included, so the intermediate ones are
spaced by what the last one cost (:class:`TimedValidation`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValidationSchedule:
    """Validate every ``every_epochs`` epochs (or every ``every_steps`` steps when set).

    Args:
        every_epochs: epochs between validations (``train.val_every``; at least 1).
        every_steps: steps between validations (``train.val_every_steps``; 0 = by epochs).
    """

    every_epochs: int = 1
    every_steps: int = 0

    def due_after_step(self, step: int) -> bool:
        """True when step ``step`` (1-based count) ends with a validation."""
        return self.every_steps > 0 and step % self.every_steps == 0

    def due(self, epoch: int, *, last: bool) -> bool:
        """True when the epoch just finished (1-based ``epoch``) ends with a validation."""
        if self.every_steps > 0:
            return last
        return last or epoch % max(1, self.every_epochs) == 0


#: Intermediate validations are at least this fraction of the budget apart (at most ~10 of
#: them in the second half of a run, however cheap they are).
MIN_SPACING = 0.05


class TimedValidation:
    """Validation under a wall-clock budget: at most ``share`` of it, the final one included.

    An intermediate validation is due once ``elapsed`` passes :attr:`next_at` (at first half
    the budget: early models are not worth choosing) and only if, with the validations so far,
    it and the final one still fit in ``share`` of the budget. After a validation that took
    ``v`` seconds the next one waits ``v * (1 - share) / share`` seconds of training (and at
    least :data:`MIN_SPACING` of the budget), so the spacing keeps validation within ``share``
    of the wall time.

    Args:
        budget: the run's ``max_time`` in seconds.
        share: the fraction of it validation may take (``train.val_share``).
        estimate: seconds one validation is expected to take before any was timed.
    """

    def __init__(self, budget: float, share: float, *, estimate: float = 0.0) -> None:
        self.budget = budget
        self.share = share
        self.estimate = estimate
        self.spent = 0.0
        self.next_at = 0.5 * budget

    def due(self, elapsed: float) -> bool:
        """True when an intermediate validation should run now."""
        if self.share <= 0 or elapsed < self.next_at:
            return False
        return self.spent + 2 * self.estimate <= self.share * self.budget

    def record(self, seconds: float, *, now: float) -> None:
        """A validation took ``seconds`` and ended at ``now`` (elapsed seconds of the run)."""
        self.spent += seconds
        self.estimate = seconds
        if self.share > 0:
            spacing = seconds * (1 - self.share) / self.share
            self.next_at = now + max(spacing, MIN_SPACING * self.budget)

    def reserve(self) -> float:
        """Seconds to keep free at the end of the budget for the final validation."""
        return self.estimate


def improved(value: float, best: float | None, metric: str) -> bool:
    """True when ``value`` beats ``best`` (lower for ``*loss`` metrics, higher otherwise)."""
    if best is None:
        return True
    return value < best if metric.endswith("loss") else value > best


@dataclass
class EarlyStopping:
    """Counts validations without improvement of ``metric``; stops after ``patience``.

    The counters live in the loop state (and so in checkpoints): this object only decides.

    Args:
        metric: the validation metric followed (``miou``, ``mask_ap``, ``loss``...).
        patience: validations without improvement that end training (None: never).
    """

    metric: str
    patience: int | None

    @classmethod
    def for_run(cls, metric: str, patience: int | None, *, budget: float | None) -> EarlyStopping:
        """``train.patience``: as set, or (None) 10 validations without a budget and off
        under one — a budget ends the run, and validations there are too few to count on."""
        if patience is None:
            patience = None if budget else 10
        return cls(metric, patience)

    def should_stop(self, validations_without_improvement: int) -> bool:
        """True once ``patience`` validations in a row brought no improvement."""
        return self.patience is not None and validations_without_improvement >= self.patience
