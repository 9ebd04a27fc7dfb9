"""A progress bar with ETA for checks that take more than about a second.

It appears only on a terminal (stderr), only once a check has run for a second
and still has a while to go, and disappears when the check ends, so quick checks
and logs stay clean.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

DELAY = 1.0
"""Seconds before the bar may appear."""


class ProgressBar:
    """Count cost evaluations; draw a rich progress bar once it is worth it."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self._enabled = enabled and total > 0
        self._started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None

    def __call__(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            return
        if not self._enabled:
            return
        elapsed = time.perf_counter() - self._started
        if elapsed < DELAY:
            return
        self._enabled = False  # decide once
        remaining = elapsed * (self.total - self.done) / max(self.done, 1)
        if remaining > DELAY:
            self._show()

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        if not console.is_terminal:
            return
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("evaluations"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("gradcheck", total=self.total, completed=self.done)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
