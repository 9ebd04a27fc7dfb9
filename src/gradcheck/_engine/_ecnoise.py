"""Read the cost's noise off tables of its values: Moré and Wild's ECnoise, and its sweep.

A table is the cost at nine equally spaced points along one line; its differences of
increasing order turn into noise at some order (they change sign and their scaled sizes
agree), which gives the noise's standard deviation (`ecnoise`). `sweep` widens or narrows
the spacing until a table shows the noise, `Tally` keeps what the tables of one
measurement found, and `kinked` and `quantum` catch the two tables that would mislead
ECnoise: a kink at x, and a cost that moves in whole quanta. Where the tables come from
(which coordinates or directions, at exactly representable points) is `_noise`.

References:
    J. J. Moré and S. M. Wild, "Estimating computational noise", SIAM J. Sci. Comput.
    33(3), 2011, and their ECnoise.m.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

POINTS = 9
"""Cost values per ECnoise table (the base value and eight perturbed points)."""
TRIES = 6
"""Spacings tried per coordinate: 64 times the last where the cost did not move, a sixteenth
where its smooth part dominated."""
MARGIN = 2.0
"""The noise used for error bars is this many times ECnoise's estimate: nine points pin a
standard deviation down only to within a factor of about two, and another coordinate or
direction can round a little worse than the one measured."""
CENTRED = tuple(i for i in range(-(POINTS // 2), POINTS // 2 + 1) if i != 0)
"""The table's points other than x, in units of the spacing: x sits in the middle."""
ONE_SIDED = tuple(range(1, POINTS))
"""The points of a table that starts at x: for a kink at x (a max tie, ReLU at 0)."""
KINK = 10.0
"""A table is a kink at x when its second difference there exceeds all others this much."""
_AGREE = 4.0
"""ECnoise: three consecutive noise levels within this factor of each other."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Noise:
    """The measured noise of the cost at the base point."""

    sigma: float
    """Standard deviation of the cost around its smooth part (absolute, in cost units): the
    largest over the arrays measured."""
    per_leaf: tuple[float, ...] = ()
    """The noise a coordinate of each array is taken to see (the largest measured)."""
    measured: bool
    """ECnoise found the noise level, or saw the cost move in whole quanta; False: ``sigma`` is
    an upper bound or a fallback."""
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


@dataclass(slots=True)
class Tally:
    """What the ECnoise tables of one measurement found so far."""

    estimates: list[float]
    bounds: list[float]
    quanta: list[float]
    """Rounding noise of a cost seen to move in whole quanta (uniform rounding: q / sqrt(12))."""
    floor: float
    """Half a unit in the last place of the cost's largest value: it is rounded at least once."""
    evaluations: int = 0
    moved: bool = False
    """Some table moved the cost at all."""

    def read(self, table: list[float], base_value: float) -> int:
        """Take one table of values (base in the middle); return ECnoise's inform code."""
        self.evaluations += len(table) - 1
        self.moved = self.moved or any(value != base_value for value in table)
        if (step := quantum(np.array(table))) > 0:
            self.quanta.append(step / math.sqrt(12))
        self.floor = max(self.floor, 0.5 * float(np.spacing(max(abs(v) for v in table))))
        sigma, inform = ecnoise(np.array(table))
        if inform == 2:  # the cost moved in whole quanta: it rounds at least that coarsely
            steps = np.abs(np.array(table) - base_value)
            if np.any(steps > 0):
                self.quanta.append(float(steps[steps > 0].min()) / math.sqrt(12))
        if inform == 1:
            self.estimates.append(sigma)
        if inform == 3 and math.isfinite(sigma):
            self.bounds.append(sigma)
        return inform

    def noise(self, fallback: float) -> Noise:
        floor = max([self.floor, *self.quanta])
        if self.estimates:
            sigma, measured = max(MARGIN * max(self.estimates), floor), True
        elif self.bounds:  # seen in whole quanta: the cost's resolution is known
            sigma, measured = max(min(self.bounds), floor), bool(self.quanta)
        else:
            sigma, measured = max(fallback, floor), bool(self.quanta)
        return Noise(sigma=sigma, measured=measured, evaluations=self.evaluations)

    def fresh(self) -> Tally:
        """An empty tally for another line, sharing the floor learnt so far."""
        return Tally([], [], [], self.floor)


def sweep(
    tally: Tally,
    values_at: Callable[[float, tuple[int, ...]], list[float] | None],
    base_value: float,
    target: float,
) -> None:
    """ECnoise along one line, widening or narrowing the spacing until the noise shows.

    Args:
        tally: collects the findings.
        values_at: the cost at exact points ``x + i * spacing`` for the given offsets i, a
            spacing near ``target``; None where no exact spacing exists.
        base_value: the cost at x.
        target: the first spacing to try.
    """
    flat: float | None = None  # the last spacing at which the cost did not move at all
    for attempt in range(TRIES):
        values = values_at(target, CENTRED)
        if values is None:
            return
        table = [*values[: POINTS // 2], base_value, *values[POINTS // 2 :]]
        if kinked(np.array(table)):  # a slope that jumps at x is not noise: look to one side
            values = values_at(target, ONE_SIDED)
            if values is None:
                return
            table = [base_value, *values]
        moves = np.abs(np.diff(table))
        if not moves.any():
            flat = target
        elif flat is not None:
            # At the spacing `flat` the cost did not move across all nine points; here each
            # point moves it by `per_point`: its quantum is more than eight `flat` points' worth.
            per_point = float(np.median(moves))
            tally.quanta.append(8 * per_point * flat / target / math.sqrt(12))
            flat = None
        inform = tally.read(table, base_value)
        if inform == 1 or (inform == 3 and tally.bounds and tally.bounds[-1] == 0):
            return  # found, or computed exactly at this spacing: no noise to find
        # Too small: nothing moved the cost; too large: the smooth part dominates.
        target = target * 64 if inform == 2 else target / 16
        if attempt == TRIES - 1 and inform == 2:
            tally.bounds.append(tally.floor)


def kinked(table: NDArray[np.float64]) -> bool:
    """Whether a centred table is a kink at its middle point rather than noise.

    Two straight pieces meeting at x (a max-pool tie, a ReLU at 0) give second differences
    that vanish everywhere but at x; ECnoise would read that jump as noise of the size of
    the slope's change times the spacing. Noise gives second differences of similar size
    everywhere, a smooth cost a slowly changing curvature.
    """
    second = np.diff(np.asarray(table, dtype=np.float64), 2)
    middle = len(second) // 2
    centre = abs(float(second[middle]))
    others = np.abs(np.delete(second, middle))
    return bool(centre > 0 and centre > KINK * float(others.max(initial=0.0)))


def quantum(table: NDArray[np.float64]) -> float:
    """The quantum one table of cost values moves in, if it shows one; else 0.

    A cost rounded to 1e-3, or computed in float32 and returned as a Python float, moves in
    whole quanta: the gaps between its values are different whole multiples of one quantum
    (their approximate greatest common divisor). Its rounding is noise of about
    ``quantum / sqrt(12)``, however regular the table looks otherwise (a table that moves by
    exactly four quanta per point has no noise in its differences at all). A table whose
    gaps are all equal shows nothing either way (a linear cost looks like that too), and a
    smooth cost's gaps have no common divisor above its rounding.
    """
    values = np.sort(np.asarray(table, dtype=np.float64))
    gaps = np.diff(values)
    gaps = gaps[gaps > 0]
    if len(gaps) < 2:
        return 0.0
    tolerance = 8 * float(np.spacing(np.abs(values).max()))
    if float(gaps.max() - gaps.min()) <= 100 * tolerance:
        return 0.0  # all gaps alike (up to round-off): no evidence
    divisor = float(gaps[0])
    for gap in gaps[1:].tolist():
        a, b = max(divisor, gap), min(divisor, gap)
        while b > tolerance:
            a, b = b, math.fmod(a, b)
            if a - b <= tolerance:
                b = 0.0
        divisor = a
    return float(divisor) if divisor > 2 * tolerance else 0.0
