"""The one rank-aware writer for everything a run produces: atomic (see :mod:`pixelseg.files`),
and only on rank 0."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelseg.engine.distributed import is_main_process
from pixelseg.files import atomic_write, atomic_write_json, atomic_write_text, jsonable


class RunWriter:
    """Writes a run directory's files; a no-op on every rank but 0.

    Args:
        run_dir: the run directory (created on first write).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = is_main_process()

    def path(self, name: str) -> Path:
        """Absolute path of ``name`` inside the run directory."""
        return self.run_dir / name

    def json(self, name: str, obj: Any) -> None:
        """Write ``obj`` as JSON to ``run_dir/name``."""
        if self.enabled:
            atomic_write_json(self.path(name), obj)

    def text(self, name: str, text: str) -> None:
        """Write text to ``run_dir/name``."""
        if self.enabled:
            atomic_write_text(self.path(name), text)

    def append_jsonl(self, name: str, record: dict[str, Any]) -> None:
        """Append one JSON line (rewritten atomically so a kill never leaves half a line)."""
        if not self.enabled:
            return
        path = self.path(name)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        atomic_write_text(path, old + json.dumps(jsonable(record)) + "\n")

    def file(self, name: str, write: Callable[[Path], None]) -> None:
        """Write ``run_dir/name`` with a custom ``write(tmp_path)`` function."""
        if self.enabled:
            atomic_write(self.path(name), write)
