"""Exceptions for user mistakes: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class PixelsegError(Exception):
    """A problem the user can fix (bad config, bad file, missing run directory).

    The CLI catches it and prints ``str(error)`` on one line with exit code 1 (or 2 for usage).
    """


class ConfigError(PixelsegError):
    """A configuration file or ``--set`` override is invalid; the message names the key."""


class DataError(PixelsegError):
    """A data file is unreadable or inconsistent; the message names the file and the problem."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class CheckpointError(PixelsegError):
    """A run directory or checkpoint is missing, corrupted or not a safetensors file."""


def write_crash_log(argv: Sequence[str] | None) -> Path:
    """Write the current exception's traceback and the command line to a crash log file.

    The file goes to ``$PIXELSEG_CRASH_DIR`` (default: the system temporary folder), named by
    the time and process id.
    """
    import os
    import sys
    import tempfile
    import time
    import traceback

    folder = Path(os.environ.get("PIXELSEG_CRASH_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"pixelseg-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    command = " ".join(["pixelseg", *(sys.argv[1:] if argv is None else argv)])
    path.write_text(f"{command}\n\n{traceback.format_exc()}", encoding="utf-8")
    return path
