"""Progress bars (rich) that stay quiet off rank 0 and when output is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pixelseg.engine.distributed import is_main_process


@contextmanager
def progress_bar(description: str, *, total: int | None) -> Iterator[Callable[..., None]]:
    """Yield ``advance(**fields)``; shows a transient bar on an interactive rank-0 console."""
    if not (is_main_process() and sys.stderr.isatty()):
        yield lambda **_: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        transient=True,
    )
    with progress:
        task_id = progress.add_task(description, total=total, info="")

        def advance(**fields: Any) -> None:
            info = " ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
            )
            progress.update(task_id, advance=1, info=info)

        yield advance
