"""Measure the noise of the cost by evaluating it, not by guessing it from a dtype.

Every error bar of a check rests on one number: how much the computed cost wanders
around the smooth function it approximates (round-off, float32 arithmetic inside a
cost that returns float64, a large constant in the loss, a quantized cost). It is
measured once per check with Moré and Wild's ECnoise: the cost at nine equally spaced
points along one coordinate, a table of finite differences of increasing order, and the
order at which the differences turn into noise (they change sign and their scaled sizes
agree). The points are spaced by a power of two times the coordinate's unit in the
last place, so they are exactly representable in its dtype: the parameters' own
rounding never masquerades as noise of the cost.

References:
    J. J. Moré and S. M. Wild, "Estimating computational noise", SIAM J. Sci. Comput.
    33(3), 2011, and their ECnoise.m.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._tree import Leaf
from ._estimate import failure_error
from ._perturb import CoordinateFailedError, evaluate_coordinates, flat_view
from ._step import shift, ulp

POINTS = 9
"""Cost values per ECnoise table (the base value and eight perturbed points)."""
TRIES = 4
"""Spacings tried per coordinate (each 16 times the last, or a sixteenth)."""
COORDINATES = 2
"""Coordinates measured; the larger estimate is kept."""
_AGREE = 4.0
"""ECnoise: three consecutive noise levels within this factor of each other."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Noise:
    """The measured noise of the cost at the base point."""

    sigma: float
    """Standard deviation of the cost around its smooth part (absolute, in cost units)."""
    measured: bool
    """ECnoise found the noise level; False: ``sigma`` is an upper bound or a fallback."""
    evaluations: int


def ecnoise(values: NDArray[np.float64]) -> tuple[float, int]:
    """Estimate the noise of equally spaced function values (Moré & Wild's ECnoise).

    Args:
        values: the function at ``x + i * delta`` for i = 0..m, in order.

    Returns:
        (noise, inform): inform 1 — noise detected, noise is its standard deviation;
        2 — the spacing is too small (half the values are equal), noise is 0;
        3 — the spacing is too large (no noise detected), noise is the smallest
        difference level, an upper bound.

    Moré and Wild also call the spacing too large when the values span more than a tenth
    of their magnitude; that test misfires for a cost that crosses zero, and the spacings
    used here are tiny, so only the difference table decides.
    """
    table = np.asarray(values, dtype=np.float64).copy()
    count = len(table)
    levels = np.zeros(count - 1)
    sign_change = np.zeros(count - 1, dtype=bool)
    gamma = 1.0
    for j in range(1, count):
        table[: count - j] = table[1 : count - j + 1] - table[: count - j]
        if j == 1 and np.count_nonzero(table[: count - 1] == 0) >= count / 2:
            return 0.0, 2
        gamma *= 0.5 * (j / (2 * j - 1))  # (j!)^2 / (2j)!
        differences = table[: count - j]
        levels[j - 1] = math.sqrt(gamma * float(np.mean(differences**2)))
        sign_change[j - 1] = float(differences.min()) * float(differences.max()) < 0
    for k in range(count - 3):
        window = levels[k : k + 3]
        if window.max() <= _AGREE * window.min() and sign_change[k]:
            return float(levels[k]), 1
    return float(levels.min()), 3


def measure(
    leaves: Sequence[Leaf],
    cost: Callable[[], float | complex],
    base_value: float,
    scales: Sequence[NDArray[np.float64]],
    seed: int,
) -> Noise:
    """Measure the cost's noise along a few coordinates (ECnoise), in place, restored after.

    Args:
        leaves: the parameter arrays (perturbed in place through their leaves).
        cost: evaluates the cost at the arrays' current values.
        base_value: the cost at the unperturbed point.
        scales: per leaf, the per-element scale of its values (`_step.scale_of`).
        seed: picks the coordinates.
    """
    rng = np.random.default_rng([seed, 0x6E6F697365])  # "noise"
    floor = 0.5 * float(np.spacing(abs(base_value)))  # the cost is rounded at least once
    estimates: list[float] = []
    bounds: list[float] = []
    quanta: list[float] = []
    """Rounding noise of a cost seen to move in whole quanta (uniform rounding: q / sqrt(12))."""
    evaluations = 0
    for leaf_index, local in _candidates(leaves, rng):
        leaf = leaves[leaf_index]
        x = complex(flat_view(leaf.array)[local]).real
        target = math.sqrt(float(np.finfo(leaf.dtype).eps)) * float(scales[leaf_index][local])
        for attempt in range(TRIES):
            moved = _spacing(leaf.dtype, x, target)
            if moved is None:
                break
            points = [[value] for value in moved.tolist()]
            try:
                values = evaluate_coordinates(leaf.array, [local], points, cost)
            except CoordinateFailedError as failure:
                shift_ = f"{float(moved[failure.offset]) - x:+.3g}"
                raise failure_error(failure, leaf, np.array([local]), shift_) from (
                    failure.__cause__
                )
            evaluations += len(points)
            table = [float(np.real(v[0])) for v in values]
            table.insert(POINTS // 2, base_value)
            floor = max(floor, 0.5 * float(np.spacing(max(abs(v) for v in table))))
            sigma, inform = ecnoise(np.array(table))
            if inform == 2:  # the cost moved in whole quanta: it rounds at least that coarsely
                steps = np.abs(np.array(table) - base_value)
                if np.any(steps > 0):
                    quanta.append(float(steps[steps > 0].min()) / math.sqrt(12))
            if inform == 1:
                estimates.append(sigma)
                break
            if inform == 3 and math.isfinite(sigma):
                bounds.append(sigma)
                if sigma == 0:
                    break  # computed exactly at this spacing: no noise to find
            # Too small: nothing moved the cost; too large: the smooth part dominates.
            target = target * 16 if inform == 2 else target / 16
            if attempt == TRIES - 1 and inform == 2:
                bounds.append(floor)
    floor = max([floor, *quanta])
    if estimates:
        return Noise(sigma=max(max(estimates), floor), measured=True, evaluations=evaluations)
    if bounds:
        return Noise(sigma=max(min(bounds), floor), measured=False, evaluations=evaluations)
    fallback = max(float(np.finfo(leaf.dtype).eps) for leaf in leaves) * abs(base_value)
    return Noise(sigma=max(fallback, floor), measured=False, evaluations=evaluations)


def _candidates(leaves: Sequence[Leaf], rng: np.random.Generator) -> list[tuple[int, int]]:
    """A seeded coordinate in each of the largest arrays (up to `COORDINATES`)."""
    order = sorted(range(len(leaves)), key=lambda i: -leaves[i].size)
    return [(i, int(rng.integers(leaves[i].size))) for i in order[:COORDINATES] if leaves[i].size]


def _spacing(dtype: np.dtype[Any], x: float, target: float) -> NDArray[Any] | None:
    """Nine points around x, spaced by an odd multiple of its unit in the last place near
    ``target``, exact in ``dtype``.

    Exact points keep the parameters' own rounding out of the table. An odd multiple (rather
    than a power of two) keeps a coarsely rounded cost from changing by exactly whole quanta
    at every point, which would make its table look noiseless. Returns the eight perturbed
    values (without x itself), or None if no spacing keeps the points exact (x at the edge
    of a binade with no room left).
    """
    real = np.dtype(np.finfo(dtype).dtype)
    value = np.array([x], dtype=real)
    unit = float(ulp(value)[0])
    if x == 0 or not unit > 0:  # at 0 any small power of two gives exact points
        unit = 2.0 ** (math.floor(math.log2(target)) - 2) if target > 0 else 1.0
    offsets = np.array([i for i in range(-(POINTS // 2), POINTS // 2 + 1) if i != 0], dtype=float)
    ratio = target / unit if unit > 0 else 1.0
    multiple = int(min(max(1.0, ratio), 2.0**52)) | 1
    while multiple >= 1:
        delta = multiple * unit
        points, moved = shift(np.repeat(value, len(offsets)), offsets * delta)
        if np.array_equal(moved, offsets * delta):
            return points
        multiple = (multiple // 2) | 1 if multiple > 1 else 0
    return None
