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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._tree import Leaf
from ._estimate import failure_error
from ._perturb import CoordinateFailedError, evaluate_coordinates, flat_view
from ._probe import DirectionFailedError
from ._step import shift, ulp

POINTS = 9
"""Cost values per ECnoise table (the base value and eight perturbed points)."""
TRIES = 6
"""Spacings tried per coordinate: 64 times the last where the cost did not move, a sixteenth
where its smooth part dominated."""
MARGIN = 2.0
"""The noise used for error bars is this many times ECnoise's estimate: nine points pin a
standard deviation down only to within a factor of about two, and another coordinate or
direction can round a little worse than the one measured."""
LEAVES = 8
"""Arrays measured, largest first, one coordinate each; the others get the largest noise."""
COORDINATES = 3
"""Coordinates tried per array while the cost does not move along them at all (a max-pool's
inputs other than the maximum, a ReLU's dead units): such a line shows no noise."""
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
class _Tally:
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

    def fresh(self) -> _Tally:
        """An empty tally for another line, sharing the floor learnt so far."""
        return _Tally([], [], [], self.floor)


def _sweep(
    tally: _Tally,
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


def measure(
    leaves: Sequence[Leaf],
    cost: Callable[[], float | complex],
    base_value: float,
    scales: Sequence[NDArray[np.float64]],
    seed: int,
    prefer: Sequence[NDArray[np.float64]] | None = None,
) -> Noise:
    """Measure the cost's noise along one coordinate of each array (ECnoise), restored after.

    This is the noise a coordinate's finite difference sees: moving one coordinate changes
    only the terms it enters, which differ from array to array (a normalization's inputs
    enter a whole row, a bias one unit), so one coordinate of each of the `LEAVES` largest
    arrays is measured and the largest noise found is kept. The coordinate is the one
    ``prefer`` rates highest (the largest analytic gradient: the cost should move along it),
    else a seeded one; where the cost does not move at all along it, up to `COORDINATES` are
    tried.

    Args:
        leaves: the parameter arrays (perturbed in place through their leaves).
        cost: evaluates the cost at the arrays' current values.
        base_value: the cost at the unperturbed point.
        scales: per leaf, the per-element scale of its values (`_step.scale_of`).
        seed: picks the coordinates.
        prefer: per leaf (flat), how surely the cost moves along each coordinate.
    """
    rng = np.random.default_rng([seed, 0x6E6F697365])  # "noise"
    first = _Tally([], [], [], 0.5 * float(np.spacing(abs(base_value))))
    found: dict[int, Noise] = {}
    evaluations = 0
    still: list[Noise] = []  # arrays along whose coordinates the cost never moved
    for leaf_index, coordinates in _candidates(leaves, rng, prefer):
        for local in coordinates:
            tally = _line(leaves[leaf_index], local, cost, base_value, scales[leaf_index], first)
            evaluations += tally.evaluations
            if tally.moved:
                found[leaf_index] = tally.noise(_fallback(leaves, base_value))
                break
        else:
            still.append(tally.noise(_fallback(leaves, base_value)))
    if not found:
        noise = still[0] if still else first.noise(_fallback(leaves, base_value))
        return replace(noise, evaluations=evaluations)
    # A coordinate that hardly enters the cost shows little noise where another, entering many
    # terms, shows much: every array gets the largest noise measured (a safe upper bound).
    largest = max(noise.sigma for noise in found.values())
    per_leaf = (largest,) * len(leaves)
    return Noise(sigma=largest, per_leaf=per_leaf, evaluations=evaluations,
                 measured=any(noise.measured for noise in found.values()))  # fmt: skip


def _line(
    leaf: Leaf,
    local: int,
    cost: Callable[[], float | complex],
    base_value: float,
    scale: NDArray[np.float64],
    first: _Tally,
) -> _Tally:
    """ECnoise along one coordinate (restored after); the tally of what it found."""
    tally = first.fresh()
    x = complex(flat_view(leaf.array)[local]).real

    def values_at(target: float, offsets: tuple[int, ...]) -> list[float] | None:
        moved = _spacing(leaf.dtype, x, target, offsets)
        if moved is None:
            return None
        points = [[value] for value in moved.tolist()]
        try:
            values = evaluate_coordinates(leaf.array, [local], points, cost)
        except CoordinateFailedError as failure:
            shift_ = f"{float(moved[failure.offset]) - x:+.3g}"
            raise failure_error(failure, leaf, np.array([local]), shift_) from failure.__cause__
        return [float(np.real(v[0])) for v in values]

    _sweep(tally, values_at, base_value, _spacing_for(leaf.dtype) * float(scale[local]))
    return tally


def measure_along_directions(
    leaves: Sequence[Leaf],
    cost: Callable[[], float | complex],
    base_value: float,
    scales: Sequence[NDArray[np.float64]],
    seed: int,
) -> Noise:
    """Measure the noise a random direction sees: every coordinate moves at once.

    Moving every coordinate changes the rounding of every term of the cost, so this noise
    can be far larger than a single coordinate's (a float32 sum of many terms). The
    direction moves each coordinate by a random odd number of its units in the last place,
    so that all nine points are exact in the parameters' dtypes.

    Args:
        leaves: the parameter arrays.
        cost: evaluates the cost at the arrays' current values.
        base_value: the cost at the unperturbed point.
        scales: per leaf, the per-element scale of its values.
        seed: draws the direction.

    Raises:
        DirectionFailedError: the cost raised with the direction applied.
    """
    rng = np.random.default_rng([seed, 0x6E6F697365, 1])
    tally = _Tally([], [], [], 0.5 * float(np.spacing(abs(base_value))))
    originals = [np.array(flat_view(leaf.array)[:]).real for leaf in leaves]
    draws = [rng.standard_normal(leaf.size) for leaf in leaves]

    def values_at(target: float, offsets: tuple[int, ...]) -> list[float] | None:
        states = []
        for leaf, x, z, scale in zip(leaves, originals, draws, scales, strict=True):
            states.append(_exact_line(leaf.dtype, x, z * target * scale, offsets))
        if not any(np.any(step) for _, step in states):
            return None
        return [_evaluate_state(leaves, originals, states, i, cost) for i in offsets]

    target = max(_spacing_for(leaf.dtype) for leaf in leaves)
    _sweep(tally, values_at, base_value, target)
    return tally.noise(_fallback(leaves, base_value))


def _exact_line(
    dtype: np.dtype[Any],
    x: NDArray[np.float64],
    wanted: NDArray[np.float64],
    offsets: tuple[int, ...] = CENTRED,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per element, an odd number of units in the last place near ``wanted``.

    A step is kept only where all of ``x + i * step`` (i in ``offsets``) are exact; returns
    (x, step).
    """
    real = np.dtype(np.finfo(dtype).dtype)
    values = x.astype(real)
    unit = ulp(values)
    tiny = ~(unit > 0) | (values == 0)
    unit = np.where(tiny, 2.0 ** np.floor(np.log2(np.maximum(np.abs(wanted), 1e-300))), unit)
    with np.errstate(over="ignore"):
        count = np.clip(np.abs(wanted) / unit, 1.0, 2.0**52).astype(np.int64) | 1
    step = np.sign(wanted) * count * unit
    ok = np.ones(len(x), dtype=bool)
    for i in offsets:
        _, moved = shift(values, i * step)
        ok &= moved == i * step
    return values, np.where(ok, step, 0.0)


def _evaluate_state(
    leaves: Sequence[Leaf],
    originals: Sequence[NDArray[np.float64]],
    states: Sequence[tuple[NDArray[np.float64], NDArray[np.float64]]],
    i: int,
    cost: Callable[[], float | complex],
) -> float:
    """The cost with every leaf moved to ``x + i * step``, restored however it ends."""
    views = [flat_view(leaf.array) for leaf in leaves]
    try:
        for view, (x, step) in zip(views, states, strict=True):
            moved, _ = shift(x, i * step)
            view[:] = moved
        try:
            return float(np.real(cost()))
        except Exception as exc:
            raise DirectionFailedError(leaves[0], 0, leaves[0].size) from exc
    finally:
        for view, original, leaf in zip(views, originals, leaves, strict=True):
            view[:] = original.astype(leaf.dtype) if not np.iscomplexobj(leaf.array) else original


def _spacing_for(dtype: np.dtype[Any]) -> float:
    """The first relative spacing tried: eps**(3/4) of the parameters' dtype.

    Small enough that the smooth part of the cost vanishes from the difference table and
    that a kink near x is rarely crossed (a crossed kink reads as noise of jump * spacing),
    large enough that the points differ by many units in the last place.
    """
    return float(float(np.finfo(dtype).eps) ** 0.75)


def _fallback(leaves: Sequence[Leaf], base_value: float) -> float:
    return float(max(float(np.finfo(leaf.dtype).eps) for leaf in leaves) * abs(base_value))


def _candidates(
    leaves: Sequence[Leaf],
    rng: np.random.Generator,
    prefer: Sequence[NDArray[np.float64]] | None,
) -> list[tuple[int, list[int]]]:
    """Up to `COORDINATES` coordinates to try in each of the largest arrays (up to `LEAVES`).

    First the one ``prefer`` rates highest (largest finite magnitude), then seeded ones.
    """
    order = sorted(range(len(leaves)), key=lambda i: -leaves[i].size)
    out = []
    for i in order[:LEAVES]:
        size = leaves[i].size
        if not size:
            continue
        picked: list[int] = []
        if prefer is not None:
            magnitude = np.abs(np.asarray(prefer[i], dtype=np.float64).reshape(-1))
            magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
            if magnitude.size == size and magnitude.max() > 0:
                picked.append(int(np.argmax(magnitude)))
        for local in rng.integers(size, size=COORDINATES).tolist():
            if len(picked) < min(COORDINATES, size) and local not in picked:
                picked.append(int(local))
        out.append((i, picked))
    return out


def _spacing(
    dtype: np.dtype[Any], x: float, target: float, offsets: tuple[int, ...] = CENTRED
) -> NDArray[Any] | None:
    """Points ``x + i * spacing`` (i in ``offsets``), exact in ``dtype``.

    The spacing is an odd number of the dtype's ulps near ``target``. Exact points keep the
    parameters' own rounding out of the table. An odd multiple (rather than a power of two)
    keeps a coarsely rounded cost from changing by exactly whole quanta at every point,
    which would make its table look noiseless. Returns the perturbed values (x itself is
    not among them), or None if no spacing keeps the points exact (x at the edge of a
    binade with no room left).
    """
    real = np.dtype(np.finfo(dtype).dtype)
    value = np.array([x], dtype=real)
    unit = float(ulp(value)[0])
    if x == 0 or not unit > 0:  # at 0 any small power of two gives exact points
        unit = 2.0 ** (math.floor(math.log2(target)) - 2) if target > 0 else 1.0
    multiples = np.array(offsets, dtype=float)
    ratio = target / unit if unit > 0 else 1.0
    multiple = int(min(max(1.0, ratio), 2.0**52)) | 1
    while multiple >= 1:
        delta = multiple * unit
        points, moved = shift(np.repeat(value, len(multiples)), multiples * delta)
        if np.array_equal(moved, multiples * delta):
            return points
        multiple = (multiple // 2) | 1 if multiple > 1 else 0
    return None
