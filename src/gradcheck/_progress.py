"""A progress bar with ETA for checks that take more than about a second.

It appears only where someone watches: on a terminal (a rich bar on stderr) or in a
Jupyter kernel (one output line that updates in place, a few times a second, never a
scroll of lines); never in a pipe, a log or CI. It appears once a check has run for a
second and still has a while to go, and disappears when the check ends, so quick checks
and logs stay clean.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

DELAY = 1.0
"""Seconds before the bar may appear."""
REFRESH = 0.25
"""Seconds between updates of the notebook line."""


class ProgressBar:
    """Count cost evaluations; draw a rich progress bar once it is worth it."""

    def __init__(self, total: int, *, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self._enabled = enabled and total > 0
        self._started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._line: NotebookLine | None = None

    def __call__(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            return
        if self._line is not None:
            self._line.update(self.done, self.total)
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
            self._line = NotebookLine.open(self._started)
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
        if self._line is not None:
            self._line.close()
            self._line = None


class NotebookLine:
    """One line of a Jupyter cell's output, updated in place (``display_id``)."""

    def __init__(self, handle: Any, started: float) -> None:
        self._handle = handle
        self._started = started
        self._shown = 0.0

    @classmethod
    def open(cls, started: float) -> NotebookLine | None:
        """The line, in a Jupyter kernel's cell; None anywhere else (a script, a pipe)."""
        if "ipykernel" not in sys.modules:
            return None
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # pragma: no cover - ipykernel depends on IPython
            return None
        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return None
        handle = display({"text/plain": "gradcheck: starting"}, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        return cls(handle, started)

    def update(self, done: int, total: int) -> None:
        """Show the count, the time and the ETA, at most every `REFRESH` seconds."""
        now = time.perf_counter()
        if now - self._shown < REFRESH and done < total:
            return
        self._shown = now
        elapsed = now - self._started
        left = elapsed * (total - done) / max(done, 1)
        text = (f"gradcheck: {done:,}/{total:,} evaluations · {elapsed:.0f} s · "
                f"ETA {left:.0f} s")  # fmt: skip
        self._handle.update({"text/plain": text}, raw=True)

    def close(self) -> None:
        """Clear the line: the report is what stays."""
        self._handle.update({"text/plain": ""}, raw=True)
