"""The pool executor: chunks of coordinates evaluated in workers, each on its own theta.

`PoolExecutor` hands chunks to a `concurrent.futures.Executor` (a process pool of ours,
a Dask client's executor, a thread pool, any other) and watches them: Ctrl-C, a lost
worker and a timeout each end the check with a clear error. `process_pool` starts a pool
whose workers unpack the problem once; what runs inside the workers is `_worker`.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._errors import CostFunctionError, EvaluationTimeoutError, WorkerError
from .._frameworks import fork_unsafe_loaded
from ._executors import CHUNK, Progress
from ._perturb import CoordinateFailedError
from ._worker import LOCAL, Payload, evaluate_chunk, install

POLL = 0.1
"""Seconds between looks at a pool's futures: how soon Ctrl-C and a lost worker are seen."""


class PoolExecutor:
    """Evaluate chunks of coordinates in workers, each with its own copy of theta.

    The problem (cost function and parameters) is serialized once with cloudpickle.
    A pool that gradcheck starts itself receives it once per worker at start-up; a
    Dask client gets it scattered once to every worker; a thread pool gets it without
    pickling (each thread copies the arrays once); any other executor gets it with each
    task (a few tasks per leaf).

    Every wait has a way out: futures are polled every `POLL` seconds, so Ctrl-C stops the
    check at once (the pool's pending work is cancelled and a pool of ours is terminated);
    a worker that dies, exits or is lost becomes a `WorkerError`; with ``timeout`` a chunk
    of one coordinate that runs past ``timeout`` times its evaluations (plus a second of
    scheduling slack) becomes an `EvaluationTimeoutError`.
    """

    def __init__(
        self,
        payload: Payload,
        executor: Any,
        workers: int,
        progress: Progress | None,
        *,
        installed: str | None = None,
        abort: Callable[[], None] | None = None,
        timeout: float | None = None,
        describe: Callable[[int, int], str] | None = None,
    ) -> None:
        self.workers = workers
        self._progress = progress
        # A Dask client, or the executor it hands out (which knows its client).
        client = getattr(executor, "_client", None) or (
            executor if hasattr(executor, "scatter") else None
        )
        threads = isinstance(executor, ThreadPoolExecutor)
        self.name = (f"Dask, {workers} workers" if client else f"{workers} threads" if threads
                     else f"{workers} workers")  # fmt: skip
        """How the report names it: "2 workers" (processes), "2 threads", "Dask, 2 workers"."""
        if executor is client:
            executor = client.get_executor()  # its futures are concurrent.futures ones
        self._submit = executor.submit
        self._abort = abort
        self._timeout = timeout
        self._describe = describe or (lambda leaf_index, coordinate: f"coordinate {coordinate}")
        self._local: str | None = None
        self._source: Any
        if installed is not None:  # our own pool: every worker unpacked it at start-up
            self._source = (installed, None, os.getpid())
            return
        key = uuid.uuid4().hex
        if isinstance(executor, ThreadPoolExecutor):  # same process: nothing to pickle
            LOCAL[key] = getattr(payload, "private", payload)
            self._local = key
            self._source = (key, None, os.getpid())
            return
        blob = dumps(payload)
        # hash=False: a fresh key per check, so releasing one check's copy never cancels
        # the next check's (same bytes, same hash).
        shipped = client.scatter(blob, broadcast=True, hash=False) if client else blob
        self._source = (key, shipped, os.getpid())

    def close(self) -> None:
        """Forget a thread pool's payload (its threads' copies go with the next check's)."""
        if self._local is not None:
            LOCAL.pop(self._local, None)

    def evaluate(
        self, leaf_index: int, indices: NDArray[np.intp], points: Sequence[NDArray[Any]]
    ) -> NDArray[Any]:
        if self._timeout is not None:  # one coordinate per task, so each has its own clock
            ranges = [(k, k + 1) for k in range(len(indices))]
        else:
            parts = max(1, min(4 * self.workers, math.ceil(len(indices) / CHUNK)))
            bounds = np.linspace(0, len(indices), parts + 1).astype(int)
            ranges = [(int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds) if hi > lo]
        results: dict[int, NDArray[Any]] = {}
        queue = list(reversed(ranges))
        running: dict[Any, tuple[int, int, float]] = {}
        limit = self.workers if self._timeout is not None else len(ranges)
        try:
            while queue or running:
                while queue and len(running) < limit:
                    lo, hi = queue.pop()
                    future = self._submit(evaluate_chunk, self._source, leaf_index,
                                          indices[lo:hi], [p[lo:hi] for p in points])  # fmt: skip
                    running[future] = (lo, hi, time.monotonic())
                done, _ = wait(list(running), timeout=POLL, return_when=FIRST_COMPLETED)
                for future in done:
                    lo, hi, _ = running.pop(future)
                    results[lo] = self._collect(future, leaf_index, indices, lo, hi, running)
                    if self._progress:
                        self._progress(results[lo].size)
                self._check_deadlines(leaf_index, indices, running, len(points))
        except BaseException:
            for future in running:
                future.cancel()
            if self._abort is not None:
                self._abort()
            raise
        return np.concatenate([results[lo] for lo, _ in ranges])

    def _collect(
        self,
        future: Any,
        leaf_index: int,
        indices: NDArray[np.intp],
        lo: int,
        hi: int,
        running: dict[Any, tuple[int, int, float]],
    ) -> NDArray[Any]:
        """A finished chunk's values; a failure inside it, or a lost worker, raised."""
        try:
            values, failure = future.result()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            flight = [(lo, hi), *[(a, b) for a, b, _ in running.values()]]
            raise self._lost(exc, leaf_index, indices, flight) from exc
        if failure is None:
            return values  # type: ignore[no-any-return]
        position, offset, cause = failure
        if isinstance(cause, KeyboardInterrupt):
            raise KeyboardInterrupt("the cost raised KeyboardInterrupt in a worker")
        if isinstance(cause, SystemExit):
            where = self._describe(leaf_index, int(indices[lo + position]))
            raise WorkerError(
                f"the cost function called sys.exit({cause.code!r}) in a worker while "
                f"{where} was moved. A worker cannot exit on its own: the check stopped. "
                "Your arrays are intact (workers perturb their own copies).",
                coordinates=hi - lo,
            )
        raise CoordinateFailedError(lo + position, offset) from cause

    def _lost(
        self,
        exc: BaseException,
        leaf_index: int,
        indices: NDArray[np.intp],
        flight: list[tuple[int, int]],
    ) -> WorkerError:
        count = sum(hi - lo for lo, hi in flight)
        first = min(lo for lo, _ in flight)
        where = self._describe(leaf_index, int(indices[first]))
        kind = type(exc).__name__
        return WorkerError(
            f"a worker was lost ({kind}: {exc}) with {count} coordinate"
            f"{'s' if count != 1 else ''} in flight, from {where}: it died, was killed or "
            "exited (a crash in native code, os._exit, running out of memory?). Your arrays "
            "are intact (workers perturb their own copies). Run the check without workers= "
            "to see the cost fail in this process.",
            coordinates=count,
        )

    def _check_deadlines(
        self,
        leaf_index: int,
        indices: NDArray[np.intp],
        running: dict[Any, tuple[int, int, float]],
        evaluations: int,
    ) -> None:
        if self._timeout is None:
            return
        now = time.monotonic()
        for lo, hi, started in running.values():
            if now - started > self._timeout * evaluations * (hi - lo) + 1.0:
                where = self._describe(leaf_index, int(indices[lo]))
                raise EvaluationTimeoutError(
                    f"the cost function ran past timeout={self._timeout:g} s per evaluation "
                    f"while {where} was moved ({now - started:.1f} s for {evaluations} "
                    "evaluations). The check stopped; your arrays are intact (workers perturb "
                    "their own copies).",
                )


def process_pool(workers: int, payload: Payload) -> tuple[ProcessPoolExecutor, str]:
    """Start a process pool whose workers each unpack the problem once, at start-up."""
    import multiprocessing

    # fork starts fastest, but forking a process that runs other threads (JAX's, a Dask
    # cluster's, a thread pool's) copies their locks mid-use and can deadlock or inherit
    # their signal handling; a fork server is clean and only slower to start. Frameworks
    # that start threads of their own are marked fork_safe=False in the registry.
    methods = multiprocessing.get_all_start_methods()
    threaded = fork_unsafe_loaded() or threading.active_count() > 1
    method = "fork" if "fork" in methods and not threaded else methods[0]
    if threaded and "forkserver" in methods:
        method = "forkserver"
    key = uuid.uuid4().hex
    blob = dumps(payload)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=install,
        initargs=(key, blob, os.getpid()),
    )
    return pool, key


def dumps(payload: object) -> bytes:
    """Serialize a problem for another process; closures and lambdas need cloudpickle.

    Raises:
        CostFunctionError: the cost or the parameters cannot be pickled (a lock, an open
            file): says so and what to use instead.
    """
    import cloudpickle

    try:
        return bytes(cloudpickle.dumps(payload))
    except Exception as exc:
        raise CostFunctionError(
            f"the cost function or the parameters cannot be sent to worker processes "
            f"({type(exc).__name__}: {exc}). Make what the cost uses picklable, or evaluate "
            "in threads (executor=concurrent.futures.ThreadPoolExecutor(n), which needs no "
            "pickling) or in this process (no workers=)."
        ) from exc


def terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a pool of ours now: kill its processes instead of waiting for their chunks."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)
