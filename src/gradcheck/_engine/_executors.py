"""Executors: how a leaf's perturbed cost values get computed — in a loop, batched, or in parallel.

Every executor answers the same question, `Executor.evaluate(leaf_index, indices, points)`:
the cost with coordinate ``indices[k]`` of leaf ``leaf_index`` moved to ``points[j][k]``,
for every k and stencil point j, all other coordinates at their current values. The
numbers are the same whichever executor computes them (the same cost on the same
values), so results do not depend on how a check was run.

- `LoopExecutor` perturbs the arrays in place, one coordinate at a time.
- `BatchedExecutor` hands a batched cost B perturbations per call; the batch size is
  picked per leaf from a quick measurement against the loop, which it falls back to.
- `PoolExecutor` (`_pool`) splits coordinates into chunks for a
  `concurrent.futures.Executor` (a process pool or a Dask client's executor); each worker
  keeps one private copy of the parameters and perturbs it in place (`_worker`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .._errors import CostFunctionError, EvaluationTimeoutError
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
