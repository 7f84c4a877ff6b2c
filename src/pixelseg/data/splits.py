"""Assigning sample ids to train / val / test, as ``[data.split]`` says.

Splits are deterministic: ranges, lists and prefixes are explicit, and ``hash`` uses the SHA-1 of
the id, so a sample never changes split when files are added or the machine changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from pixelseg.config import SplitConfig
from pixelseg.errors import ConfigError

SPLITS = ("train", "val", "test")
REST = "*"
_LEADING_INT = re.compile(r"^\d+")


def hash_fraction(sample_id: str) -> float:
    """A stable number in ``[0, 1)`` from the SHA-1 of ``sample_id``."""
    digest = hashlib.sha1(sample_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _parse_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        return (int(low), int(high)) if sep else (int(low), int(low))
    except ValueError as exc:
        raise ConfigError(f"data.split: {text!r} is not a range like '0-19' or '7'") from exc


def _matches(sample_id: str, method: str, patterns: Sequence[str]) -> bool:
    if method == "list":
        return sample_id in patterns
    if method == "prefix":
        return any(sample_id.startswith(p) for p in patterns)
    match = _LEADING_INT.match(sample_id)
    if match is None:
        return False
    number = int(match.group())
    return any(low <= number <= high for low, high in map(_parse_range, patterns))


def _by_hash(ids: Sequence[str], fractions: Sequence[float]) -> dict[str, list[str]]:
    if not fractions or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise ConfigError(f"data.split.fractions: {list(fractions)} must be non-negative")
    total = float(sum(fractions))
    bounds, acc = [], 0.0
    for fraction in list(fractions)[: len(SPLITS)]:
        acc += fraction / total
        bounds.append(acc)
    result: dict[str, list[str]] = {name: [] for name in SPLITS}
    for sample_id in ids:
        value = hash_fraction(sample_id)
        for name, bound in zip(SPLITS, bounds):
            if value < bound:
                result[name].append(sample_id)
                break
        else:  # rounding at the top edge
            result[SPLITS[len(bounds) - 1]].append(sample_id)
    return result


def assign_splits(ids: Sequence[str], split: SplitConfig) -> dict[str, list[str]]:
    """Divide ``ids`` into ``{"train": [...], "val": [...], "test": [...]}`` (input order kept).

    Ids that no split claims are left out. With ``method = "all"`` train and val both hold every
    id (a quick check, not an honest evaluation).

    Raises:
        ConfigError: a malformed range, two ``"*"`` splits, or an id claimed by two splits.
    """
    if split.method == "all":
        return {"train": list(ids), "val": list(ids), "test": []}
    if split.method == "hash":
        return _by_hash(ids, split.fractions)
    patterns = {name: tuple(getattr(split, name)) for name in SPLITS}
    rest = [name for name, p in patterns.items() if REST in p]
    if len(rest) > 1:
        raise ConfigError(f"data.split: only one split may be '*' (got {', '.join(rest)})")
    result: dict[str, list[str]] = {name: [] for name in SPLITS}
    for sample_id in ids:
        claimed = [
            name
            for name, p in patterns.items()
            if REST not in p and p and _matches(sample_id, split.method, p)
        ]
        if len(claimed) > 1:
            raise ConfigError(
                f"data.split: sample {sample_id!r} is in both {claimed[0]} and {claimed[1]}"
            )
        if claimed:
            result[claimed[0]].append(sample_id)
        elif rest:
            result[rest[0]].append(sample_id)
    return result
