"""Directional checks and bisection: detect a wrong tensor in a few evaluations, then localize.

Directional derivative identity: for a direction D,
``(J(theta + D) - J(theta - D)) / 2 = g . D + O(|D|**3)``, so one pair of evaluations
checks the whole gradient along D. Each parameter tensor gets its own k random Gaussian
directions ``D = h z`` (h the per-element step of the check, z standard normal), so a small
tensor is never drowned out by a large one. The values written are those of the step
primitive, and the analytic side is ``a . (high - low) / 2`` for the values actually
written: rounding never biases the comparison, and a direction whose components all
rounded away yields no evidence.

Detection power. If the analytic gradient a = g + e of a tensor is off by e, the
analytic and numeric projections differ by ``e . D ~ N(0, ||e h||**2)`` whatever the shape
of e (one element or all of them). A direction flags the tensor when that gap exceeds
``2 tau ||a h||`` plus the round-off allowance of the measured noise; an error with
``||e|| >= rho ||g||`` escapes one direction with probability at most
``erf(threshold / (sqrt(2) rho ||g h||))``, and k independent directions with that to the
power k (`miss_probability`).

Bisection (adaptive group testing): a flagged tensor's flat index range is halved; each
half is tested with a direction supported on it alone, and the halves that fail are
halved again, down to a few coordinates checked one by one. One wrong element among n
costs about ``4 log2(n)`` evaluations; d wrong elements about d times that.

References:
    Dorfman (1943) and Hwang (1972) for group testing by binary splitting; the
    directional check as in PyTorch's fast gradcheck, but per tensor and with its
    miss probability stated.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .._norms import stable_norm
from ._estimate import Problem
from ._probe import direction_ladder

LEAF_SIZE = 4
"""Sets of at most this many coordinates are checked coordinate by coordinate."""
RETRIES = 3
"""Extra tries with fresh directions when a failing set has no failing half."""
MAX_FOUND = 10
"""Bisection stops after localizing this many wrong elements in one tensor."""


def miss_probability(directions: int, tolerance: float, relative_error: float,
                     noise: float = 0.0) -> float:  # fmt: skip
    """Probability that k directions all miss an error of ``relative_error * ||g||``.

    Args:
        directions: k, directions per tensor.
        tolerance: tau, the per-direction threshold relative to 2 ||a h||.
        relative_error: rho, ``||e|| / ||g||``.
        noise: the per-direction round-off allowance, relative to ``||g h||``.
    """
    threshold = 2 * tolerance * (1 + relative_error) + noise
    one = math.erf(threshold / (math.sqrt(2) * relative_error))
    return one**directions


def directions_for(target: float, tolerance: float, relative_error: float) -> int:
    """The fewest directions per tensor whose miss probability is at most ``target``."""
    one = miss_probability(1, tolerance, relative_error)
    if one <= 0:
        return 1
    return max(1, math.ceil(math.log(target) / math.log(one) - 1e-12))


@dataclass(frozen=True, slots=True, kw_only=True)
class Direction:
    """One random direction over the flat range [lo, hi) of a leaf, measured once."""

    leaf_index: int
    lo: int
    hi: int
    displacement: NDArray[np.float64]
    """[hi - lo] the direction D at unit step: the per-element steps times a Gaussian."""
    analytic: float
    """``a . (high - low) / 2`` for the values written."""
    numeric: float
    """``(J(high) - J(low)) / 2`` (nan: the cost was not finite, or nothing moved)."""
    noise: float
    """Round-off error bar of ``numeric``, from the cost's measured noise."""
    scale: float
    """``||a h||`` over the range: the typical size of an analytic projection."""
    usable: bool
    """Some component moved: the direction yields evidence."""
    nonfinite: bool
    """The cost was nan or inf at one of the two points."""
    flat: bool = False
    """The cost came back bit for bit the same at both points and the base point."""


def project(
    problem: Problem,
    leaf_index: int,
    lo: int,
    hi: int,
    steps: NDArray[np.float64],
    analytic: NDArray[np.float64],
    sigma: float,
    rng: np.random.Generator,
    count: int,
) -> list[Direction]:
    """Measure ``count`` random directions over [lo, hi) of one leaf (2 evaluations each).

    Args:
        problem: what to perturb and evaluate.
        leaf_index: the leaf.
        lo: first flat index of the range.
        hi: one past the last.
        steps: [hi - lo] the per-element steps.
        analytic: [hi - lo] the analytic gradient over the range.
        sigma: the cost's measured noise.
        rng: draws the directions.
        count: how many.

    Raises:
        DirectionFailedError: the cost raised with a direction applied.
    """
    scale = float(stable_norm(analytic * steps))
    out = []
    for _ in range(count):
        displacement = steps * rng.standard_normal(hi - lo)
        ladder = direction_ladder(problem, leaf_index, lo, hi, displacement, [1.0], analytic)
        usable = bool(ladder.up[0, 0] > 0)
        plus, minus = float(ladder.plus[0, 0]), float(ladder.minus[0, 0])
        finite = math.isfinite(plus) and math.isfinite(minus)
        out.append(
            Direction(
                leaf_index=leaf_index, lo=lo, hi=hi, displacement=displacement,
                analytic=float(ladder.analytic[0, 0]),
                numeric=(plus - minus) / 2 if usable and finite else math.nan,
                noise=sigma * math.sqrt(2) / 2, scale=scale, usable=usable,
                nonfinite=usable and not finite,
                flat=usable and plus == minus == float(np.real(problem.base_value)),
            )
        )  # fmt: skip
    return out


@dataclass(slots=True, kw_only=True)
class Bisection:
    """What bisecting one tensor found."""

    checked: list[tuple[int, int]] = field(default_factory=list)
    """Ranges [lo, hi) checked coordinate by coordinate."""
    directions: list[Direction] = field(default_factory=list)
    """The directions over halves that were measured on the way."""
    unresolved: list[tuple[int, int]] = field(default_factory=list)
    """Ranges [lo, hi) that failed but whose halves did not."""
    stopped: bool = False
    """Bisection stopped at `MAX_FOUND` wrong elements."""


def bisect(
    size: int,
    measure: Callable[[int, int, int, int], list[Direction]],
    fails: Callable[[Direction], bool],
    check_range: Callable[[int, int], int],
) -> Bisection:
    """Halve a failing tensor's flat range until the wrong coordinates are checked one by one.

    Args:
        size: the tensor's number of elements.
        measure: ``measure(lo, hi, count, attempt)`` measures ``count`` fresh directions
            over [lo, hi).
        fails: whether a measured direction shows an error beyond its allowance.
        check_range: checks the coordinates of [lo, hi) one by one and returns how many
            are wrong.
    """
    found = Bisection()
    stack = [(0, size)]
    wrong = 0
    while stack:
        lo, hi = stack.pop()
        if hi - lo <= LEAF_SIZE:
            found.checked.append((lo, hi))
            wrong += check_range(lo, hi)
            if wrong >= MAX_FOUND:
                found.stopped = True
                return found
            continue
        mid = (lo + hi) // 2
        failing: list[tuple[int, int]] = []
        for attempt in range(RETRIES + 1):
            count = 1 if attempt == 0 else 2
            failing = []
            for a, b in ((lo, mid), (mid, hi)):
                measured = measure(a, b, count, attempt)
                found.directions.extend(measured)
                if any(fails(d) for d in measured):
                    failing.append((a, b))
            if failing:
                break
        if not failing:
            found.unresolved.append((lo, hi))
            continue
        stack.extend(reversed(failing))  # depth first, lower half first
    return found
