"""Ladders of steps: evaluate rows again at many steps, and take the reading.

The mechanics behind `settle`'s stages: a ladder over coordinates or along a direction,
spanning the check's own step and the step the measured noise calls for (`run_ladder`); a
short re-estimate around a chosen step (`reestimate`); and a tied coordinate moved off
its kink and laddered there (`move_off_kink`). Each reading goes into the rows
(`Rows.apply`); each returns the evaluations it spent.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .._engine import (
    MAX_RELATIVE,
    MIN_ULPS,
    TEXTBOOK_EPS,
    Guard,
    coordinate_ladder,
    direction_ladder,
    flat_view,
    shift,
    ulp,
)
from ._context import Context
from ._rows import Rows, Status
from ._steps import RATIO, read

MAX_STEPS = 12
"""Steps in the widest ladder."""
MAX_OFF_KINK = 16
"""Kink ties per parameter settled off the kink."""
_DOMAIN_STEPS = 6
"""A row whose cost was not finite is retried at steps down to the check's step / 4**6."""


def _optimal(ctx: Context, rows: Rows, scale: NDArray[np.float64]) -> NDArray[np.float64]:
    """The central-difference step that balances the measured noise against curvature.

    Curvature is unknown before the ladder; it is taken as the gradient's size over one
    scale length of the parameter, ``|f'''| ~ G / scale**2``.
    """
    gradient = rows.gradient_scale()
    if gradient == 0:
        gradient = max(abs(float(np.real(ctx.problem.base_value))), ctx.noise_of(rows)) / float(
            np.median(scale)
        )
    relative = 3 * ctx.noise_of(rows) / (gradient * scale) if gradient > 0 else 1.0
    return scale * np.minimum(relative, 1.0) ** (1 / 3)


def run_ladder(ctx: Context, rows: Rows, picked: NDArray[np.intp], *, narrow: bool = False) -> int:
    """Run a ladder of steps on the picked rows and take its reading.

    A narrow ladder spans the check's own step times 4**(-2..2); a wide one also the step the
    measured noise calls for (and smaller steps for a cost that was not finite).
    """
    base = float(np.real(ctx.problem.base_value))
    if rows.directions is not None:
        return sum(_direction_ladder(ctx, rows, int(r), base, narrow=narrow) for r in picked)
    scale = ctx.scales[rows.leaf_index][rows.local[picked]]
    h = rows.step[picked]
    x = np.asarray(flat_view(rows.leaf.array)[rows.local[picked]])
    floor = ulp(x.real if np.iscomplexobj(x) else x)
    # Upwards the ladder may go past the parameter's own magnitude, to a tenth of the larger of
    # it and 1: a small value (a bias near 0) says nothing about how fast the cost varies, and
    # steps too large for the cost only disagree with their neighbours, which the reading sees.
    reach = np.maximum(scale, 1.0)
    cap = MAX_RELATIVE * reach
    optimal = h
    if ctx.pinned or narrow:
        lo, hi = h / 16, h * 64
    else:
        optimal = np.maximum(_optimal(ctx, rows, scale), _optimal(ctx, rows, reach))
        lo = np.minimum(h / 16, _optimal(ctx, rows, scale) / RATIO)
        hi = np.minimum(np.maximum(h * 16, optimal * RATIO), cap)
    # Where the cost was not finite, the point is near the edge of its domain (sqrt or log of
    # a value near 0): smaller steps, down to a fraction of the coordinate's own value.
    # Where the cost did not move at all, up to where it must (a coarsely rounded cost).
    flat = rows.status[picked] == Status.FLAT
    if not ctx.pinned:
        lo = np.where(flat, np.maximum(h, floor), lo)
        hi = np.where(flat, cap, hi)
    nonfinite = rows.status[picked] == Status.NONFINITE
    real = np.abs(x.real if np.iscomplexobj(x) else x).astype(np.float64)
    deep = np.minimum(h / RATIO**_DOMAIN_STEPS, np.maximum(real, floor) / 16)
    lo = np.where(nonfinite, deep, lo)
    hi = np.where(nonfinite, h, hi)
    if not ctx.pinned:
        lo = np.maximum(lo, floor)
    hi = np.maximum(hi, lo * RATIO**2)
    around = np.where(nonfinite | flat, np.sqrt(lo * hi), optimal)
    steps = _geometric(lo, hi, None if ctx.pinned else around)
    # A disagreement counts from steps within a tenth of the parameter's scale, and always
    # from steps up to the textbook's 1e-7: what the textbook loop flags, gradcheck flags.
    trusted = np.maximum(np.maximum(MAX_RELATIVE * scale, h), TEXTBOOK_EPS)
    return _read_coordinates(ctx, rows, picked, steps, base, laddered=True, trusted=trusted)


def _geometric(
    lo: NDArray[np.float64], hi: NDArray[np.float64], around: NDArray[np.float64] | None = None
) -> NDArray[np.float64]:
    """[k, S] steps from lo to hi per row, a factor `RATIO` apart, at most `MAX_STEPS` of them.

    A span too wide for that is narrowed to the `MAX_STEPS` steps around ``around`` (the step
    the noise calls for): the far ends of such a span are all round-off or all truncation.
    Rows with a narrower span repeat their top step, which adds nothing.
    """
    width = RATIO ** (MAX_STEPS - 1)
    with np.errstate(over="ignore", divide="ignore"):  # steps near the smallest floats
        return _spread(lo, hi, around, width)


def _spread(
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    around: NDArray[np.float64] | None,
    width: float,
) -> NDArray[np.float64]:
    if around is not None:
        start = np.clip(around / RATIO ** (MAX_STEPS // 2), lo, np.maximum(hi / width, lo))
        lo, hi = np.where(hi / lo > width, start, lo), np.where(hi / lo > width, start * width, hi)
    spans = np.log(hi / lo) / np.log(RATIO)
    count = int(np.clip(np.floor(spans.max()) + 1, 3, MAX_STEPS))
    steps = lo[:, None] * RATIO ** np.arange(count)
    return np.minimum(steps, hi[:, None])


def _read_coordinates(
    ctx: Context,
    rows: Rows,
    picked: NDArray[np.intp],
    steps: NDArray[np.float64],
    base: float,
    *,
    laddered: bool,
    trusted: NDArray[np.float64] | None = None,
) -> int:
    coordinates = rows.local[picked] + rows.leaf.offset
    ladder = coordinate_ladder(ctx.problem, coordinates, steps, rows.analytic[picked],
                               ctx.executor)  # fmt: skip
    reading = read(ladder, base, ctx.noise_of(rows), trusted)
    rows.apply(picked, reading, ctx.thresholds[1], flat_is_zero=ctx.noise_measured)
    if not laddered:
        rows.laddered[picked] = False
    rows.refined_steps.extend(reading.step[np.isfinite(reading.step)].tolist())
    return ladder.evaluations


def _direction_ladder(ctx: Context, rows: Rows, r: int, base: float, *, narrow: bool) -> int:
    """Ladder along one direction: the multipliers t of ``x +- t D`` (1/16..16 if narrow)."""
    assert rows.directions is not None
    assert rows.leaf_analytic is not None
    direction = rows.directions[r]
    lo_, hi_ = direction.lo, direction.hi
    # As for coordinates, the ladder may reach a tenth of max(scale, 1) (see `_ladder`).
    scale = ctx.scales[rows.leaf_index][lo_:hi_]
    reach = np.maximum(scale, 1.0)
    size = np.abs(direction.displacement)
    moving = size > 0
    # The multipliers at which a typical component moves by its reach, and by its own scale.
    with np.errstate(over="ignore"):  # a subnormal displacement: an infinite length, capped
        length = float(np.median(reach[moving] / size[moving])) if moving.any() else 1.0
        own = float(np.median(scale[moving] / size[moving])) if moving.any() else 1.0
    length, own = min(length, 1e300), min(own, 1e300)
    cap = MAX_RELATIVE * length / 4  # Gaussian components reach about 4 times their step
    optimal = 1.0
    if ctx.pinned or narrow:
        lo, hi = 1 / 16, 16.0
    else:
        typical = max(direction.scale, 1e-300)
        sigma = ctx.noise_along(rows.leaf_index, hi_ - lo_)
        optimal = length * min(3 * sigma / (typical * length), 1.0) ** (1 / 3)
        optimal = max(optimal, 1e-6)  # a noiseless cost: the ladder's own bottom decides
        hi = max(min(max(16.0, optimal * RATIO), cap), 1.0)
        lo = min(1 / 16, optimal / RATIO, hi / 16)
    around = None if ctx.pinned else np.array([optimal])
    multipliers = _geometric(np.array([lo]), np.array([max(hi, lo * RATIO**2)]), around)[0].tolist()
    ladder = direction_ladder(ctx.problem, rows.leaf_index, lo_, hi_, direction.displacement,
                              multipliers, rows.leaf_analytic[lo_:hi_])  # fmt: skip
    typical = float(np.median(size[moving])) if moving.any() else 1.0
    trusted = np.array([max(MAX_RELATIVE * own / 4, 1.0, TEXTBOOK_EPS / typical)])
    reading = read(ladder, base, ctx.noise_along(rows.leaf_index, hi_ - lo_), trusted)
    rows.apply(np.array([r]), reading, ctx.thresholds[1], flat_is_zero=ctx.noise_measured)
    return ladder.evaluations


def reestimate(ctx: Context, rows: Rows, picked: NDArray[np.intp], factor: float) -> int:
    """Re-estimate rows on a short ladder (a quarter, one and four times ``factor * scale``)."""
    scale = ctx.scales[rows.leaf_index][rows.local[picked]]
    x = np.asarray(flat_view(rows.leaf.array)[rows.local[picked]])
    floor = MIN_ULPS * ulp(x.real if np.iscomplexobj(x) else x)
    center = np.clip(factor * scale, floor * RATIO, MAX_RELATIVE * scale)
    steps = center[:, None] * RATIO ** np.array([-1.0, 0.0, 1.0])
    steps = np.clip(steps, floor[:, None], (MAX_RELATIVE * scale)[:, None])
    base = float(np.real(ctx.problem.base_value))
    return _read_coordinates(ctx, rows, picked, steps, base, laddered=False)


def move_off_kink(ctx: Context, rows: Rows) -> int:
    """Move tied coordinates off their kink by a seeded offset and settle them there."""
    assert ctx.recompute is not None
    ties = [k for k in rows.kinks if not k.within and rows.status[k.row] == Status.TIE]
    if not ties:
        return 0
    rng = np.random.default_rng([ctx.seed, rows.leaf_index, 0x6B696E6B])  # "kink"
    view = flat_view(rows.leaf.array)
    evaluations = 0
    with Guard([rows.leaf]):
        for kink in ties[:MAX_OFF_KINK]:
            r = kink.row
            local = int(rows.local[r])
            original = view[local]
            x = np.asarray([original])
            real = x.real if np.iscomplexobj(x) else x
            moved, _ = shift(real, np.array([8 * kink.step * rng.choice([-1.0, 1.0])]))
            try:
                view[local] = moved[0]
                base = float(np.real(ctx.problem.cost()))
                analytic = float(ctx.recompute()[rows.leaf.offset + local])
                steps = (2 * kink.step / RATIO**4) * RATIO ** np.arange(5)[None, :]
                coordinate = np.array([rows.leaf.offset + local])
                ladder = coordinate_ladder(ctx.problem, coordinate, steps.astype(np.float64),
                                           np.array([analytic]), ctx.executor)  # fmt: skip
                evaluations += ladder.evaluations + 1
            finally:
                view[local] = original
            reading = read(ladder, base, ctx.noise_of(rows))
            if reading.kink[0] or not math.isfinite(float(reading.refined[0])):
                continue
            rows.analytic[r] = analytic
            rows.status[r] = Status.MEASURED
            rows.off_kink[r] = True
            rows.apply(np.array([r]), reading, ctx.thresholds[1], flat_is_zero=ctx.noise_measured)
    return evaluations
