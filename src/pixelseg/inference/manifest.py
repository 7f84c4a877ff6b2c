"""Which run, checkpoint and options wrote each prediction: ``manifest.json`` under ``--out``.

``pixelseg predict`` skips an image only when its outputs exist *and* the manifest says they
came from the same run directory, the same checkpoint file (by SHA-256) and the same options
(tiles, TTA, probabilities); outputs of an older model or other options are redone. The file is
rewritten atomically at most every :data:`SAVE_EVERY_S` seconds and at the end, so a killed run
loses at most a few entries, and a missing entry only means the image is predicted again.
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


class Manifest:
    """The outputs under one folder and what wrote them.

    Args:
        out: the output folder (the manifest is ``out/manifest.json``).
        origin: what writes now: run directory, checkpoint name and SHA-256, options.
    """

    def __init__(self, out: Path, origin: dict[str, Any]) -> None:
        self.path = out / MANIFEST
        self.origin = origin
        self.entries: dict[str, dict[str, Any]] = {}
        self._saved_at = time.monotonic()
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("outputs"), dict):
                self.entries = loaded["outputs"]
        except (OSError, ValueError):
            pass  # none yet, or unreadable: every output is redone and the file rewritten

    def _key(self, label_path: Path) -> str:
        return label_path.relative_to(self.path.parent).as_posix()

    def is_current(self, label_path: Path, image_path: Path) -> bool:
        """True when ``label_path`` was written from ``image_path`` by this origin."""
        entry = self.entries.get(self._key(label_path))
        return entry == {**self.origin, "input": str(image_path)}

    def record(self, label_path: Path, image_path: Path) -> None:
        """Note that this origin wrote ``label_path`` from ``image_path``."""
        self.entries[self._key(label_path)] = {**self.origin, "input": str(image_path)}
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            self.save()

    def forget(self) -> None:
        """Drop every entry (``--overwrite``: all outputs are redone)."""
        self.entries.clear()

    def save(self) -> None:
        """Write the manifest atomically."""
        text = json.dumps({"outputs": self.entries}, indent=1, sort_keys=True) + "\n"
        atomic_write_text(self.path, text)
        self._saved_at = time.monotonic()
