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

#: The bars shown now (at most one: rich cannot show two live displays).
_shown: list[str] = []


@contextmanager
def progress_bar(description: str, *, total: int | None) -> Iterator[Callable[..., None]]:
    """Yield ``advance(**fields)``; shows a transient bar on an interactive rank-0 console.

    A bar opened while another is shown stays hidden (rich shows one live display at a time):
    the outer bar, e.g. the folder's images, keeps going.
    """
    if not (is_main_process() and sys.stderr.isatty()) or _shown:
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
    _shown.append(description)
    try:
        with progress:
            yield _advancer(progress, progress.add_task(description, total=total, info=""))
    finally:
        _shown.pop()


def _advancer(progress: Progress, task_id: Any) -> Callable[..., None]:
    def advance(**fields: Any) -> None:
        info = " ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
        )
        progress.update(task_id, advance=1, info=info)

    return advance
