"""A time limit on each in-process evaluation of the cost (the ``timeout=`` option).

In this process the limit is a ``SIGALRM`` timer around each call, so a cost that hangs in
Python code (a loop that never ends, a ``sleep``) is interrupted and the check stops with
`EvaluationTimeoutError`, its arrays restored as after any failing evaluation. Worker pools
enforce the limit from the caller's side instead (see `PoolExecutor`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from ._errors import EvaluationTimeoutError, InvalidArgumentError

T = TypeVar("T")
P = ParamSpec("P")


class _Expired(BaseException):
    """The alarm, raised inside the cost: a BaseException, which ``except Exception`` misses."""


def _expire(signum: int, frame: Any) -> None:
    raise _Expired


def require_timer() -> None:
    """Refuse ``timeout=`` where no alarm can interrupt the cost: off the main thread."""
    if not hasattr(signal, "setitimer"):
        raise InvalidArgumentError(
            "timeout= needs POSIX interval timers (signal.setitimer), which this platform "
            "lacks; use workers= (the limit is then enforced from outside the workers)."
        )
    if threading.current_thread() is not threading.main_thread():
        raise InvalidArgumentError(
            "timeout= interrupts a cost evaluated in this process with a SIGALRM timer, which "
            "only the main thread receives; run the check on the main thread, or use workers= "
            "(the limit is then enforced from outside the workers)."
        )


def limited(cost: Callable[P, T], seconds: float) -> Callable[P, T]:
    """``cost`` with each call interrupted after ``seconds`` (EvaluationTimeoutError)."""

    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        if threading.current_thread() is not threading.main_thread():
            return cost(*args, **kwargs)  # workers= from a thread: the pool enforces it
        previous = signal.signal(signal.SIGALRM, _expire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return cost(*args, **kwargs)
        except _Expired:
            raise EvaluationTimeoutError(
                f"one evaluation of the cost function ran past timeout={seconds:g} s"
            ) from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return call
