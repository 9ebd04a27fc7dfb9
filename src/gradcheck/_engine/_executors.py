"""Executors: how a leaf's perturbed cost values get computed — in a loop, batched, or in parallel.

Every executor answers the same question, `Executor.evaluate(leaf_index, indices, points)`:
the cost with coordinate ``indices[k]`` of leaf ``leaf_index`` moved to ``points[j][k]``,
for every k and stencil point j, all other coordinates at their current values. The
numbers are the same whichever executor computes them (the same cost on the same
values), so results do not depend on how a check was run.

- `LoopExecutor` perturbs the arrays in place, one coordinate at a time.
- `BatchedExecutor` hands a batched cost B perturbations per call; the batch size is
  picked per leaf from a quick measurement against the loop, which it falls back to.
- `PoolExecutor` splits coordinates into chunks for a `concurrent.futures.Executor`
  (a process pool or a Dask client's executor); each worker keeps one private copy of
  the parameters and perturbs it in place.
"""

from __future__ import annotations

import itertools
import math
import os
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .._errors import CostFunctionError, EvaluationTimeoutError, WorkerError
from .._frameworks import fork_unsafe_loaded
from ._perturb import CoordinateFailedError, evaluate_coordinates

BatchedCost = Callable[[int, NDArray[np.intp], NDArray[Any]], Any]
"""``batched(leaf_index, indices, values)``: the B costs when coordinate ``indices[b]`` of
leaf ``leaf_index`` takes ``values[b]`` (one coordinate per batch element), every other
coordinate at its current value. Returns an array of B costs."""

Progress = Callable[[int], None]
"""Called with the number of cost evaluations just done."""

CHUNK = 256
"""Coordinates per progress update in the loop, and per task (at least) in a pool."""
MEMORY_BUDGET = 256 * 2**20
"""Bytes a batch of stacked parameter copies may take."""
_BATCH_SIZES = (16, 64, 256)
AGREEMENT = 1e-9
"""Relative agreement a batched cost must show with the plain one in float64 (rounding in a
different order differs at 1e-16; a wrong batched cost by far more)."""


class Executor(Protocol):
    """Computes perturbed cost values for one leaf's coordinates."""

    def evaluate(
        self, leaf_index: int, indices: NDArray[np.intp], points: Sequence[NDArray[Any]]
    ) -> NDArray[Any]:
        """Return ``values[k, j]``: the cost with coordinate k at stencil point j.

        Raises:
            CoordinateFailedError: the cost raised at position k, stencil point j.
        """
        ...


class LoopExecutor:
    """Perturb in place and evaluate, one coordinate at a time."""

    def __init__(
        self, arrays: Sequence[NDArray[Any]], cost: Callable[[], Any], progress: Progress | None
    ) -> None:
        self._arrays = arrays
        self._cost = cost
        self._progress = progress

    def evaluate(
        self, leaf_index: int, indices: NDArray[np.intp], points: Sequence[NDArray[Any]]
    ) -> NDArray[Any]:
        array = self._arrays[leaf_index]
        columns: list[list[Any]] = [[] for _ in points]
        for start in range(0, len(indices), CHUNK):
            part = slice(start, start + CHUNK)
            try:
                values = evaluate_coordinates(
                    array, indices[part].tolist(), [p[part].tolist() for p in points], self._cost
                )
            except CoordinateFailedError as failure:
                raise CoordinateFailedError(start + failure.position, failure.offset) from (
                    failure.__cause__
                )
            for column, chunk in zip(columns, values, strict=True):
                column.extend(chunk)
            if self._progress:
                self._progress(len(values[0]) * len(points))
        return np.array(columns).T


class BatchedExecutor:
    """Evaluate B perturbations per call of a batched cost, B chosen per leaf by measurement.

    For each leaf the first coordinates are timed through the loop and through the
    batched cost at a few batch sizes (within the memory budget); the fastest way is
    used for the rest of the leaf. The timed evaluations are part of the check, not
    extra. Each leaf's first coordinate is also evaluated both ways, so a batched cost that
    disagrees with the plain one (for any array) is caught before it misleads.
    """

    def __init__(
        self,
        batched: BatchedCost,
        loop: LoopExecutor,
        sizes: Sequence[int],
        progress: Progress | None,
        *,
        stacked: bool = True,
        base: float = 0.0,
        resolution: float = float(np.finfo(np.float64).eps),
    ) -> None:
        self._batched = batched
        self._loop = loop
        self._sizes = sizes
        self._progress = progress
        self._stacked = stacked
        self._base = base
        self._resolution = resolution
        self._agreement = max(AGREEMENT, 1e4 * resolution)
        self.choices: dict[int, int] = {}
        """Batch size chosen per leaf (1 means the loop)."""
        self._verified: set[int] = set()

    def evaluate(
        self, leaf_index: int, indices: NDArray[np.intp], points: Sequence[NDArray[Any]]
    ) -> NDArray[Any]:
        size = self._sizes[leaf_index]
        flat_indices = np.repeat(indices, len(points))  # [k * P], coordinate-major
        flat_values = np.stack(points, axis=1).reshape(-1)
        limit = max(1, MEMORY_BUDGET // max(1, 8 * size)) if self._stacked else 1 << 16
        candidates = [b for b in _BATCH_SIZES if b <= limit] or [min(limit, _BATCH_SIZES[0])]
        out = np.empty(len(flat_values), dtype=np.result_type(flat_values.dtype, np.float64))
        done = 0  # evaluations done, in flat order
        if leaf_index not in self._verified and len(indices):
            done = self._verify(leaf_index, indices, points, flat_indices, flat_values, out)
        best, done = self._calibrate(leaf_index, indices, points, flat_indices, flat_values, out,
                                     done, candidates)  # fmt: skip
        self.choices[leaf_index] = best
        while done < len(flat_values):
            if best == 1:
                k0 = done // len(points)
                values = self._loop.evaluate(leaf_index, indices[k0:], [p[k0:] for p in points])
                out[done:] = values.reshape(-1)
                break
            stop = min(done + best, len(flat_values))
            out[done:stop] = self._call(leaf_index, flat_indices[done:stop], flat_values[done:stop])
            if self._progress:
                self._progress(stop - done)
            done = stop
        return out.reshape(len(indices), len(points))

    def _verify(self, leaf_index: int, indices: NDArray[np.intp], points: Sequence[NDArray[Any]],
                flat_indices: NDArray[np.intp], flat_values: NDArray[Any],
                out: NDArray[Any]) -> int:  # fmt: skip
        """Compare the batched cost with the loop on the first coordinate; keep both results."""
        count = len(points)
        looped = self._loop.evaluate(leaf_index, indices[:1], [p[:1] for p in points])
        batched = self._call(leaf_index, flat_indices[:count], flat_values[:count])
        looped_flat = looped.reshape(-1)
        scale = max(1.0, abs(self._base), float(np.max(np.abs(looped))))
        # The changes from the base point are what the derivative is made of: they must
        # agree to round-off, not merely the costs (a wrong term of size h would hide there).
        change, batched_change = looped_flat - self._base, batched - self._base
        slack = 1e3 * self._resolution * scale + 1e-6 * np.abs(change)
        if np.any(np.abs(batched - looped_flat) > self._agreement * scale) or np.any(
            np.abs(batched_change - change) > slack
        ):
            raise CostFunctionError(
                "the batched cost disagrees with the plain cost at the same point "
                f"({batched.tolist()} vs {looped.reshape(-1).tolist()}); check that it "
                "evaluates each batch element independently (reductions over the right "
                "axes, no sum over the batch)."
            )
        self._verified.add(leaf_index)
        out[:count] = looped.reshape(-1)
        return count

    def _calibrate(self, leaf_index: int, indices: NDArray[np.intp],
                   points: Sequence[NDArray[Any]], flat_indices: NDArray[np.intp],
                   flat_values: NDArray[Any], out: NDArray[Any], done: int,
                   candidates: Sequence[int]) -> tuple[int, int]:  # fmt: skip
        """Time the loop and each batch size on the next coordinates; return (best, done)."""
        count = len(points)
        remaining = len(flat_values) - done
        if remaining < 2 * count * candidates[0]:
            return (1 if remaining < count * candidates[0] else candidates[0]), done
        timings: dict[int, float] = {}
        k0 = done // count
        probe = 8
        started = time.perf_counter()
        looped = self._loop.evaluate(
            leaf_index, indices[k0 : k0 + probe], [p[k0 : k0 + probe] for p in points]
        )
        out[done : done + looped.size] = looped.reshape(-1)
        timings[1] = (time.perf_counter() - started) / looped.size
        done += looped.size
        for size in candidates:
            if len(flat_values) - done < size:
                break
            started = time.perf_counter()
            out[done : done + size] = self._call(
                leaf_index, flat_indices[done : done + size], flat_values[done : done + size]
            )
            timings[size] = (time.perf_counter() - started) / size
            done += size
            if self._progress:
                self._progress(size)
        best = min(timings, key=lambda b: timings[b])
        # Continue with the loop on whole coordinates only.
        if best == 1 and done % count:
            extra = count - done % count
            out[done : done + extra] = self._call(
                leaf_index, flat_indices[done : done + extra], flat_values[done : done + extra]
            )
            done += extra
        return best, done

    def _call(self, leaf_index: int, indices: NDArray[np.intp], values: NDArray[Any]) -> Any:
        try:
            result = np.asarray(self._batched(leaf_index, indices, values))
        except EvaluationTimeoutError:
            raise
        except Exception as exc:
            raise CostFunctionError(
                f"the batched cost raised {type(exc).__name__}: {exc} for a batch of "
                f"{len(indices)} perturbations; your arrays have been restored."
            ) from exc
        if result.shape != (len(indices),):
            raise CostFunctionError(
                f"the batched cost returned shape {result.shape} for a batch of {len(indices)} "
                f"perturbations; it must return one cost per batch element, shape "
                f"({len(indices)},)."
            )
        if result.dtype.kind != "f":
            raise CostFunctionError(
                f"the batched cost returned an array of dtype {result.dtype} for a batch of "
                f"{len(indices)} perturbations; it must return float costs (an integer, bool "
                "or complex cost has no real derivative to check)."
            )
        return result


Payload = Callable[[], tuple[Sequence[NDArray[Any]], Callable[[], Any]]]
"""Run in a worker: returns the worker's private leaf arrays and a cost evaluating them."""


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
        if hasattr(executor, "scatter") and hasattr(executor, "get_executor"):  # a Dask client
            executor = executor.get_executor()  # its futures are concurrent.futures ones
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
            _LOCAL[key] = getattr(payload, "private", payload)
            self._local = key
            self._source = (key, None, os.getpid())
            return
        blob = dumps(payload)
        client = getattr(executor, "_client", None) or (
            executor if hasattr(executor, "scatter") else None
        )
        # hash=False: a fresh key per check, so releasing one check's copy never cancels
        # the next check's (same bytes, same hash).
        shipped = client.scatter(blob, broadcast=True, hash=False) if client else blob
        self._source = (key, shipped, os.getpid())

    def close(self) -> None:
        """Forget a thread pool's payload (its threads' copies go with the next check's)."""
        if self._local is not None:
            _LOCAL.pop(self._local, None)

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
                    future = self._submit(_evaluate_chunk, self._source, leaf_index,
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


_LOCAL: dict[str, Payload] = {}
"""Thread pools: each check's payload by key, handed to threads of this process unpickled."""

_WORKER = threading.local()
"""Per worker thread: the problem it unpacked, so threads of one process never share the
arrays they perturb (a thread pool, or a Dask worker with several threads)."""


def install(key: str, blob: bytes, parent: int) -> None:
    """Unpack the problem once in this worker thread (a pool initializer, or on first use).

    In another process, BLAS is limited to one thread: N workers with N threads each would
    oversubscribe the cores. Threads of the caller's own process leave its setting alone.
    """
    if os.getpid() != parent:
        _limit_threads()
    _WORKER.installed = (key, pickle.loads(blob)())


def _evaluate_chunk(
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
    installed = getattr(_WORKER, "installed", None)
    if installed is None or installed[0] != key:
        if key in _LOCAL and os.getpid() == parent:  # a thread of the caller's process
            _WORKER.installed = (key, _LOCAL[key]())
        else:
            assert blob is not None, "a worker without the problem installed got no payload"
            install(key, blob, parent)
    arrays, cost = _WORKER.installed[1]
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


def _limit_threads() -> None:
    """One BLAS/OpenMP thread per worker: N workers x N threads would oversubscribe the cores."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
        return
    threadpool_limits(1)


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
