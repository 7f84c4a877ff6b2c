"""Which run, checkpoint and options wrote each prediction: ``manifest.json`` under ``--out``.

``pixelseg predict`` skips an image only when its outputs exist *and* the manifest says they
came from the same run directory, the same checkpoint file (by SHA-256) and the same options
(tiles, TTA, probabilities); outputs of an older model or other options are redone. The file is
rewritten atomically at most every :data:`SAVE_EVERY_S` seconds and at the end, so a killed run
loses at most a few entries, and a missing entry only means the image is predicted again.
Under ``torchrun`` each rank keeps its own part (``.manifest-rank<R>.json``) and rank 0 merges
the parts into ``manifest.json`` at the end (:func:`merge_parts`); a run killed before that
leaves the parts, which every later run reads too, whatever its number of processes.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from pixelseg.files import atomic_write_text

MANIFEST = "manifest.json"
SAVE_EVERY_S = 2.0
#: The per-rank parts under DDP.
PART_GLOB = ".manifest-rank*.json"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def origin_of(run_dir: Path, checkpoint: Path, **options: Any) -> dict[str, Any]:
    """What writes outputs: the run directory, the checkpoint file's name and SHA-256, options."""
    return {
        "run": str(run_dir.resolve()),
        "checkpoint": checkpoint.name,
        "sha256": file_sha256(checkpoint),
        **options,
    }


def _read_json(path: Path) -> dict[str, dict[str, Any]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: its outputs are redone and the file rewritten
    if isinstance(loaded, dict) and isinstance(loaded.get("outputs"), dict):
        return loaded["outputs"]
    return {}


def _write_entries(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    text = json.dumps({"outputs": entries}, indent=1, sort_keys=True) + "\n"
    atomic_write_text(path, text)


def _read_entries(out: Path) -> dict[str, dict[str, Any]]:
    """The entries of ``out/manifest.json`` and of any DDP parts beside it."""
    entries = _read_json(out / MANIFEST)
    for part in sorted(out.glob(PART_GLOB)):
        entries.update(_read_json(part))
    return entries


def merge_parts(out: Path) -> None:
    """Fold the DDP ranks' parts into ``out/manifest.json`` and remove them (rank 0, after
    every rank saved)."""
    parts = sorted(out.glob(PART_GLOB))
    _write_entries(out / MANIFEST, _read_entries(out))
    for part in parts:
        part.unlink(missing_ok=True)


class Manifest:
    """The outputs under one folder and what wrote them.

    Args:
        out: the output folder (the manifest is ``out/manifest.json``).
        origin: what writes now: run directory, checkpoint name and SHA-256, options.
        rank: under DDP, this process's rank: it saves its own part.
    """

    def __init__(self, out: Path, origin: dict[str, Any], *, rank: int | None = None) -> None:
        self.path = out / (MANIFEST if rank is None else f".manifest-rank{rank}.json")
        self.origin = origin
        self.entries = _read_entries(out)
        self.rank = rank
        self.recorded: dict[str, dict[str, Any]] = {}  # what this run wrote (a DDP part)
        self._saved_at = time.monotonic()

    def _key(self, label_path: Path) -> str:
        return label_path.relative_to(self.path.parent).as_posix()

    def is_current(self, label_path: Path, image_path: Path) -> bool:
        """True when ``label_path`` was written from ``image_path`` by this origin."""
        entry = self.entries.get(self._key(label_path))
        return entry == {**self.origin, "input": str(image_path)}

    def record(self, label_path: Path, image_path: Path) -> None:
        """Note that this origin wrote ``label_path`` from ``image_path``."""
        entry = {**self.origin, "input": str(image_path)}
        self.entries[self._key(label_path)] = self.recorded[self._key(label_path)] = entry
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def forget(self) -> None:
        """Drop every entry (``--overwrite``: all outputs are redone)."""
        self.entries.clear()

    def save(self) -> None:
        """Write the manifest (under DDP: this rank's part, what it wrote) atomically."""
        _write_entries(self.path, self.entries if self.rank is None else self.recorded)
        self._saved_at = time.monotonic()
