"""Directional checks and bisection: detect a wrong tensor in a few evaluations, then localize.

Directional derivative identity: for a direction v,
``(J(theta + h v) - J(theta - h v)) / 2h = g . v + O(h**2)``, so one pair of
evaluations checks the whole gradient along v. Each parameter tensor gets its own
k random Gaussian directions (so a small tensor is never drowned out by a large one).

Detection power. If the analytic gradient a = g + e of a tensor is off by e, the
analytic and numeric projections differ by ``e . v ~ N(0, ||e||**2)`` for a Gaussian v,
whatever the shape of e (one element or all of them). A direction flags the tensor when
``|a.v - numeric| > 2 tau ||a||``; an error with ``||e|| >= rho ||g||`` escapes one direction
with probability at most ``erf(sqrt(2) tau (1 + rho) / rho)``, and k independent
directions with that to the power k.

Bisection (adaptive group testing): a flagged tensor's flat index range is halved;
each half is tested with a direction supported on it alone, and the halves that fail
are halved again, down to a few coordinates checked one by one. One wrong element
among n costs about ``4 log2(n)`` evaluations; d wrong elements about d times that.

References:
    Dorfman (1943) and Hwang (1972) for group testing by binary splitting; the
    directional check as in PyTorch's fast gradcheck, but per tensor and with its
    miss probability stated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._tree import Leaf
from ._perturb import CoordinateFailedError, Guard, evaluate_coordinates, flat_view

LEAF_SIZE = 4
"""Sets of at most this many coordinates are checked coordinate by coordinate."""
RETRIES = 3
"""Extra tries with fresh directions when a failing set has no failing half."""
MAX_FOUND = 10
"""Bisection stops after localizing this many wrong elements in one tensor."""
_NOISE = 10.0


def miss_probability(directions: int, tolerance: float, relative_error: float) -> float:
    """Probability that k directions all miss an error of ``relative_error * ||g||``.

    Args:
        directions: k, directions per tensor.
        tolerance: tau, the per-direction threshold relative to 2 ||a||.
        relative_error: rho, ``||e|| / ||g||``.
    """
    one = math.erf(math.sqrt(2) * tolerance * (1 + relative_error) / relative_error)
    return one**directions


def directions_for(target: float, tolerance: float, relative_error: float) -> int:
    """The fewest directions per tensor whose miss probability is at most ``target``."""
    one = miss_probability(1, tolerance, relative_error)
    if one <= 0:
        return 1
    return max(1, math.ceil(math.log(target) / math.log(one) - 1e-12))


@dataclass(frozen=True, slots=True, kw_only=True)
class Projection:
    """One tensor checked along k directions."""

    analytic: NDArray[np.float64]
    """[k] analytic directional derivatives a . v (v as realized in floating point)."""
    numeric: NDArray[np.float64]
    """[k] finite-difference directional derivatives."""
    scale: float
    """2 max(||a||, rms(numeric)): what the per-direction error is measured against."""
    noise: float
    """Round-off floor of one numeric directional derivative."""

    @property
    def difference(self) -> float:
        """Largest over directions of ``|a.v - numeric| / scale`` (0 when both sides are 0)."""
        gaps = np.abs(self.analytic - self.numeric)
        if not len(gaps) or not np.isfinite(gaps).all():
            return math.nan if len(gaps) else 0.0
        if self.scale == 0:
            return 0.0 if float(gaps.max()) <= _NOISE * self.noise else math.inf
        excess = np.maximum(gaps - _NOISE * self.noise, 0.0)
        return float(excess.max()) / self.scale


@dataclass(slots=True, kw_only=True)
class DirectionalResult:
    """Per tensor: its projections; and the coordinates bisection checked one by one."""

    projections: list[Projection | None] = field(default_factory=list)
    coordinates: list[int] = field(default_factory=list)
    """Coordinates of theta checked individually (bisect), in the order checked."""
    values: list[float] = field(default_factory=list)
    """Their numeric partial derivatives (central differences)."""
    steps: list[float] = field(default_factory=list)
    unresolved: list[tuple[str, int, int]] = field(default_factory=list)
    """(tensor, first, last flat index) of sets that failed but whose halves did not."""
    stopped: list[str] = field(default_factory=list)
    """Tensors where bisection stopped at `MAX_FOUND` wrong elements."""
    evaluations: int = 0


class Prober:
    """Evaluate directional derivatives of index ranges of one leaf, in place."""

    def __init__(
        self,
        leaf: Leaf,
        analytic: NDArray[np.float64],
        cost: Callable[[], Any],
        step: float,
        noise: float,
        seed: int,
        leaf_index: int,
    ) -> None:
        self.leaf = leaf
        self.analytic = analytic  # [leaf.size]
        self.cost = cost
        self.step = step
        self.noise = noise
        self.seed = seed
        self.leaf_index = leaf_index
        self.evaluations = 0

    def project(self, lo: int, hi: int, count: int, attempt: int = 0) -> Projection:
        """Check coordinates [lo, hi) along ``count`` Gaussian directions supported on them."""
        view = flat_view(self.leaf.array)
        x = np.array(view[lo:hi])
        rng = np.random.default_rng([self.seed, self.leaf_index, lo, hi, attempt])
        analytic = np.empty(count)
        numeric = np.empty(count)
        for k in range(count):
            v = rng.standard_normal(hi - lo)
            plus = (x + self.step * v).astype(x.dtype)
            minus = (x - self.step * v).astype(x.dtype)
            try:
                view[lo:hi] = plus
                up = self._evaluate(lo, hi)
                view[lo:hi] = minus
                down = self._evaluate(lo, hi)
            finally:
                view[lo:hi] = x
            moved = (plus.astype(np.float64) - minus) / (2 * self.step)  # realized v
            analytic[k] = float(self.analytic[lo:hi] @ moved)
            numeric[k] = (np.real(up) - np.real(down)) / (2 * self.step)
        a_norm = float(np.linalg.norm(self.analytic[lo:hi]))
        rms = float(np.sqrt(np.mean(numeric**2))) if count else 0.0
        return Projection(analytic=analytic, numeric=numeric, scale=2 * max(a_norm, rms),
                          noise=self.noise)  # fmt: skip

    def coordinates(self, lo: int, hi: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Central differences for each coordinate in [lo, hi); returns (numeric, steps)."""
        view = flat_view(self.leaf.array)
        x = np.array(view[lo:hi])
        h = np.full(hi - lo, self.step)
        up = ((x + h.astype(x.dtype)) - x).astype(np.float64)
        h = np.where(up > 0, up, h)
        points = [(x + c * h.astype(x.dtype)).astype(x.dtype).tolist() for c in (1.0, -1.0)]
        try:
            columns = evaluate_coordinates(self.leaf.array, list(range(lo, hi)), points, self.cost)
        except CoordinateFailedError as failure:
            at = lo + failure.position
            raise DirectionFailedError(self.leaf, at, at + 1) from failure.__cause__
        self.evaluations += 2 * (hi - lo)
        values = np.real(np.array(columns))
        return (values[0] - values[1]) / (2 * h), h

    def _evaluate(self, lo: int, hi: int) -> Any:
        self.evaluations += 1
        try:
            return self.cost()
        except Exception as exc:
            raise DirectionFailedError(self.leaf, lo, hi) from exc


class DirectionFailedError(Exception):
    """The cost raised while a direction over coordinates [lo, hi) of a leaf was applied."""

    def __init__(self, leaf: Leaf, lo: int, hi: int) -> None:
        super().__init__(leaf.name, lo, hi)
        self.leaf, self.lo, self.hi = leaf, lo, hi


def check_directions(
    probers: list[Prober | None], directions: int, tolerance: float, bisect: bool
) -> DirectionalResult:
    """Project every tensor on its directions; with ``bisect``, localize in failing ones."""
    result = DirectionalResult()
    with Guard([p.leaf for p in probers if p is not None]):
        for prober in probers:
            if prober is None:
                result.projections.append(None)
                continue
            projection = prober.project(0, prober.leaf.size, directions)
            result.projections.append(projection)
            if bisect and not projection.difference < tolerance:
                _bisect(prober, tolerance, result)
            result.evaluations += prober.evaluations
            prober.evaluations = 0
    return result


def _bisect(prober: Prober, tolerance: float, result: DirectionalResult) -> None:
    """Halve failing index ranges until the wrong coordinates are checked one by one."""
    leaf = prober.leaf
    stack = [(0, leaf.size)]
    found = 0
    while stack:
        lo, hi = stack.pop()
        if hi - lo <= LEAF_SIZE:
            numeric, steps = prober.coordinates(lo, hi)
            analytic = prober.analytic[lo:hi]
            result.coordinates.extend(range(leaf.offset + lo, leaf.offset + hi))
            result.values.extend(numeric.tolist())
            result.steps.extend(steps.tolist())
            gap = np.abs(analytic - numeric)
            found += int(np.count_nonzero(
                gap > tolerance * (np.abs(analytic) + np.abs(numeric)) + _NOISE * prober.noise
            ))  # fmt: skip
            if found >= MAX_FOUND:
                result.stopped.append(leaf.name)
                return
            continue
        mid = (lo + hi) // 2
        halves = [(lo, mid), (mid, hi)]
        failing = []
        for attempt in range(RETRIES + 1):
            count = 1 if attempt == 0 else 2
            failing = [
                (a, b)
                for a, b in halves
                if not prober.project(a, b, count, attempt).difference < tolerance
            ]
            if failing:
                break
        if not failing:
            result.unresolved.append((leaf.name, lo, hi - 1))
            continue
        stack.extend(reversed(failing))  # depth first, lower half first


__all__ = [
    "CoordinateFailedError",
    "DirectionFailedError",
    "DirectionalResult",
    "Prober",
    "Projection",
    "check_directions",
    "directions_for",
    "miss_probability",
]
