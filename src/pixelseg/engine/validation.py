"""When to validate, and what counts as better: the validation schedule and early stopping."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValidationSchedule:
    """Validate every ``every_epochs`` epochs and after the last one.

    Args:
        every_epochs: epochs between validations (``train.val_every``; at least 1).
    """

    every_epochs: int = 1

    def due(self, epoch: int, *, last: bool) -> bool:
        """True when the epoch just finished (1-based ``epoch``) ends with a validation."""
        return last or epoch % max(1, self.every_epochs) == 0


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
        patience: validations without improvement that end training.
    """

    metric: str
    patience: int

    def should_stop(self, validations_without_improvement: int) -> bool:
        """True once ``patience`` validations in a row brought no improvement."""
        return validations_without_improvement >= self.patience
