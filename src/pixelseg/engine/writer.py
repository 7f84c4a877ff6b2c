"""The one rank-aware, atomic writer for everything a run produces.

Every write goes to a temporary file in the destination folder, is flushed and fsynced, then
renamed over the destination (``os.replace`` is atomic on POSIX), so a killed run never leaves a
half-written file that a later read could take as whole. Only rank 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pixelseg.engine.distributed import is_main_process


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file to ``path``.

    Args:
        path: the final destination.
        write: a function that writes the whole content to the path it is given.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give results the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return atomic_write(path, write)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_write(path, write)


def jsonable(obj: Any) -> Any:
    """Replace NaN/inf by ``None`` (JSON has no NaN) and tuples by lists, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (NaN written as ``null``)."""
    return atomic_write_text(path, json.dumps(jsonable(obj), indent=2) + "\n")


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
