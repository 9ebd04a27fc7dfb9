"""The worker side of a pool: unpack the problem once per worker, loop over chunks on it.

Runs inside the pool's workers (other processes, or threads of this one): each worker
thread keeps its own copy of the parameters (`WORKER`) and perturbs it in place, and a
failure comes back as data rather than as an exception that might not pickle.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._perturb import CoordinateFailedError, evaluate_coordinates

Payload = Callable[[], tuple[Sequence[NDArray[Any]], Callable[[], Any]]]
"""Run in a worker: returns the worker's private leaf arrays and a cost evaluating them."""


LOCAL: dict[str, Payload] = {}
"""Thread pools: each check's payload by key, handed to threads of this process unpickled."""

WORKER = threading.local()
"""Per worker thread: the problem it unpacked, so threads of one process never share the
arrays they perturb (a thread pool, or a Dask worker with several threads)."""


def install(key: str, blob: bytes, parent: int) -> None:
    """Unpack the problem once in this worker thread (a pool initializer, or on first use).

    In another process, BLAS is limited to one thread: N workers with N threads each would
    oversubscribe the cores. Threads of the caller's own process leave its setting alone.
    """
    if os.getpid() != parent:
        _limit_threads()
    WORKER.installed = (key, pickle.loads(blob)())


def evaluate_chunk(
    source: tuple[str, bytes | None, int],
    leaf_index: int,
    indices: NDArray[np.intp],
    points: Sequence[NDArray[Any]],
) -> tuple[NDArray[Any], tuple[int, int, BaseException] | None]:
    """Run in a worker: loop over the chunk on the worker's own copy of the parameters.

    A failure comes back as data (position, stencil point, exception), the exception
    replaced by its text where it would not pickle.
    """
    key, blob, parent = source
    installed = getattr(WORKER, "installed", None)
    if installed is None or installed[0] != key:
        if key in LOCAL and os.getpid() == parent:  # a thread of the caller's process
            WORKER.installed = (key, LOCAL[key]())
        else:
            assert blob is not None, "a worker without the problem installed got no payload"
            install(key, blob, parent)
    arrays, cost = WORKER.installed[1]
    try:
        values = evaluate_coordinates(
            arrays[leaf_index], indices.tolist(), [p.tolist() for p in points], cost
        )
    except CoordinateFailedError as failure:
        return np.empty(0), (failure.position, failure.offset, _portable(failure.__cause__))
    except (KeyboardInterrupt, SystemExit) as stop:  # the cost's; the worker itself lives on
        position, offset = getattr(stop, "gradcheck_at", (0, 0))
        return np.empty(0), (position, offset, stop)
    return np.array(values).T, None


def _portable(error: BaseException | None) -> BaseException:
    """The user's exception if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    assert error is not None
    return error


def _limit_threads() -> None:
    """One BLAS/OpenMP thread per worker: N workers x N threads would oversubscribe the cores."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
        return
    threadpool_limits(1)
