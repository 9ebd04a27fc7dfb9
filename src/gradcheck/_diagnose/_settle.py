"""Settle a parameter's verdict on evidence, evaluating more only where the verdict needs it.

The bulk pass gives each row a numeric value and a round-off error bar. When that does
not settle the verdict (`_compare.judge`), evidence is gathered in this order:

1. **A ladder of steps** on the rows that matter (those with no usable value, those that
   disagree, or those whose error bars are too wide — at most `MAX_LADDERED`). The ladder
   spans the check's own step and, unless the user pinned it, the step the measured noise
   calls for, so a cost with a large constant or float32 arithmetic is read at steps where
   its noise no longer dominates. The ladder decides kinks, confirms mismatches and gives
   refined values with error bars that include truncation (`_steps.read`).
2. **Off the kink.** Where the analytic value lies outside the one-sided slopes of a kink
   and the gradient can be recomputed (grads=None, the framework adapters), the
   coordinate is moved off the kink by a small seeded offset and settled there.
3. **Adaptive re-estimation** (coordinates, unpinned steps): the remaining rows that need
   it are re-estimated on a short ladder at the step the first ladder found best, then
   once more at a larger (noise-bound) or smaller (truncation-bound) step.

Whatever is still unsettled is `inconclusive`, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._compare import Judgement, judge
from .._engine import (
    MAX_RELATIVE,
    MIN_ULPS,
    TEXTBOOK_EPS,
    Executor,
    Guard,
    Problem,
    coordinate_ladder,
    direction_ladder,
    flat_view,
    shift,
    ulp,
)
from .._norms import stable_norm
from ._rows import Rows, Status
from ._steps import RATIO, read

MAX_LADDERED = 64
"""Rows per parameter that get a full ladder of steps."""
CONFIRM = 4
"""Rows laddered first to confirm a mismatch: the worst; more only if none confirms it (the
worst may sit on kinks)."""
MAX_STEPS = 12
"""Steps in the widest ladder."""
ROUNDS = 2
"""Adaptive re-estimation rounds."""
MAX_OFF_KINK = 16
"""Kink ties per parameter settled off the kink."""
_DOMAIN_STEPS = 6
"""A row whose cost was not finite is retried at steps down to the check's step / 4**6."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the diagnosis needs to evaluate the cost again."""

    problem: Problem
    executor: Executor | None
    """Evaluates coordinate ladders (the check's loop, batched cost or pool)."""
    sigmas: Sequence[float]
    """Per leaf, the cost's measured noise along one of its coordinates."""
    direction_sigma: float
    """Its noise along a random direction (every coordinate moved: every term re-rounded)."""
    thresholds: tuple[float, float, float]
    pinned: bool
    """The user chose the step (a float eps): it is not widened."""
    scales: Sequence[NDArray[np.float64]]
    """Per leaf, the per-element scale of its values."""
    recompute: Callable[[], NDArray[np.float64]] | None
    """The analytic gradient over theta at the arrays' current values, where it can be had."""
    seed: int
    gradient_scale: float
    """The typical analytic gradient element of the whole check (RMS), for what is negligible."""
    noise_measured: bool = True
    """The cost's noise was measured (ECnoise saw it), not only bounded: a cost that does not
    move at any step is then a measured zero derivative."""

    def noise_along(self, leaf_index: int, moved: int) -> float:
        """The noise a direction over ``moved`` elements of a leaf sees.

        A direction that moves one element is that element's coordinate: it sees the
        coordinate's noise, not that of a direction moving every array at once.
        """
        return self.sigmas[leaf_index] if moved == 1 else self.direction_sigma


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """A parameter's settled verdict and what it cost."""

    judgement: Judgement
    evaluations: int


def settle(ctx: Context, rows: Rows) -> Outcome:
    """Gather evidence until the parameter's verdict is settled or nothing more can help."""
    outcome = _gather(ctx, rows)
    if outcome.judgement.settled:
        return outcome
    # Last resort, once no step resolves it: a gradient that is zero within error bars that
    # are negligible for the whole check (a bias before a normalization layer).
    return Outcome(judgement=_judge(ctx, rows, final=True), evaluations=outcome.evaluations)


def _gather(ctx: Context, rows: Rows) -> Outcome:
    """The stages of evidence, each only while the verdict is still open."""
    evaluations = 0
    verdict = _judge(ctx, rows)
    if verdict.settled:
        return Outcome(judgement=verdict, evaluations=0)
    for round_ in range(2):  # the rows the verdict needs; then those its new reason needs
        # A mismatch is confirmed by its worst rows; the rest are laddered only if needed.
        limit = CONFIRM if round_ == 0 and verdict.reason == "unconfirmed" else MAX_LADDERED
        picked = _pick(ctx, rows, verdict.reason, limit)
        if not len(picked):
            break
        # A difference beyond narrow error bars needs only a short ladder around the check's
        # own step to confirm a mistake (or find kinks); wide bars need the noise's step too.
        # Directions get the wide ladder if the narrow one did not settle it.
        narrow = verdict.reason == "unconfirmed" and (round_ == 0 or not rows.is_directional)
        evaluations += _ladder(ctx, rows, picked, narrow=narrow)
        verdict = _judge(ctx, rows)
        if verdict.settled:
            break
    if not verdict.settled and ctx.recompute is not None and not rows.is_directional:
        evaluations += _off_kink(ctx, rows)
        verdict = _judge(ctx, rows)
    if verdict.settled or ctx.pinned or rows.is_directional:
        return Outcome(judgement=verdict, evaluations=evaluations)
    factor = _best_factor(ctx, rows)
    for _ in range(ROUNDS):
        remaining = _needing(ctx, rows, verdict.reason) & ~rows.laddered
        if not remaining.any():
            break
        evaluations += _reestimate(ctx, rows, np.flatnonzero(remaining), factor)
        previous, verdict = verdict, _judge(ctx, rows)
        if verdict.settled:
            break
        factor *= RATIO if previous.reason == "noise" else 1 / RATIO
    return Outcome(judgement=verdict, evaluations=evaluations)


def _sigma(ctx: Context, rows: Rows) -> float:
    """The noise a row of this parameter sees: along a direction, or along its coordinates."""
    if rows.directions:
        first = rows.directions[0]
        return ctx.noise_along(rows.leaf_index, first.hi - first.lo)
    return ctx.sigmas[rows.leaf_index]


def _judge(ctx: Context, rows: Rows, *, final: bool = False) -> Judgement:
    difference, error_bar = rows.difference()
    return judge(
        difference,
        error_bar,
        thresholds=ctx.thresholds,
        unresolved=rows.unresolved_reason(),
        confirmed=bool(rows.confirmed.any()),
        analytic_finite=bool(np.isfinite(rows.analytic).all()),
        negligible=final and rows.negligible(ctx.gradient_scale, ctx.thresholds[1]),
    )


def _needing(ctx: Context, rows: Rows, reason: str | None) -> NDArray[np.bool_]:
    """Rows whose evidence the verdict still lacks: unresolved, off, or too imprecise."""
    unresolved = np.isin(rows.status, (Status.NO_STEP, Status.NONFINITE, Status.FLAT))
    needing = unresolved | rows.off(ctx.thresholds[1])
    if reason == "noise":
        ok = rows.measured()
        total = float(stable_norm(rows.numeric[ok]) + stable_norm(rows.analytic[ok]))
        target = ctx.thresholds[2] / (4 * 3.0) * total / math.sqrt(max(int(ok.sum()), 1))
        needing |= ok & (rows.error > target)
    elif reason == "unconfirmed" and not needing.any():
        needing = rows.measured()
    return needing


def _pick(ctx: Context, rows: Rows, reason: str | None, limit: int) -> NDArray[np.intp]:
    """The rows to ladder, most telling first, at most ``limit``."""
    needing = _needing(ctx, rows, reason) & ~rows.laddered
    unresolved = np.flatnonzero(needing & (rows.status != Status.MEASURED))
    measured = np.flatnonzero(needing & (rows.status == Status.MEASURED))
    key = (
        rows.error[measured]
        if reason == "noise"
        else np.abs(rows.analytic[measured] - rows.numeric[measured])
    )
    measured = measured[np.argsort(-key, kind="stable")]
    return np.concatenate([unresolved, measured])[:limit].astype(np.intp)


def _optimal(ctx: Context, rows: Rows, scale: NDArray[np.float64]) -> NDArray[np.float64]:
    """The central-difference step that balances the measured noise against curvature.

    Curvature is unknown before the ladder; it is taken as the gradient's size over one
    scale length of the parameter, ``|f'''| ~ G / scale**2``.
    """
    gradient = rows.gradient_scale()
    if gradient == 0:
        gradient = max(abs(float(np.real(ctx.problem.base_value))), _sigma(ctx, rows)) / float(
            np.median(scale)
        )
    relative = 3 * _sigma(ctx, rows) / (gradient * scale) if gradient > 0 else 1.0
    return scale * np.minimum(relative, 1.0) ** (1 / 3)


def _ladder(ctx: Context, rows: Rows, picked: NDArray[np.intp], *, narrow: bool = False) -> int:
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
    reading = read(ladder.plus, ladder.minus, ladder.up, ladder.down, ladder.analytic, base,
                   _sigma(ctx, rows), trusted)  # fmt: skip
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
    reading = read(ladder.plus, ladder.minus, ladder.up, ladder.down, ladder.analytic, base,
                   ctx.noise_along(rows.leaf_index, hi_ - lo_), trusted)  # fmt: skip
    rows.apply(np.array([r]), reading, ctx.thresholds[1], flat_is_zero=ctx.noise_measured)
    return ladder.evaluations


def _best_factor(ctx: Context, rows: Rows) -> float:
    """The relative step for re-estimation.

    Where the ladder's estimates agreed best, or the noise-bound step of a fourth-order
    estimate where no ladder ran.
    """
    scale = ctx.scales[rows.leaf_index][rows.local]
    good = rows.laddered & (rows.status == Status.MEASURED) & ~rows.confirmed
    good &= np.isfinite(rows.step) & (rows.step > 0)
    if good.any():
        return float(np.median(rows.step[good] / scale[good]))
    gradient = rows.gradient_scale() or 1.0
    relative = _sigma(ctx, rows) / (gradient * float(np.median(scale)))
    return float(min(max(relative, 1e-16), 1.0) ** (1 / 5))


def _reestimate(ctx: Context, rows: Rows, picked: NDArray[np.intp], factor: float) -> int:
    """Re-estimate rows on a short ladder (a quarter, one and four times ``factor * scale``)."""
    scale = ctx.scales[rows.leaf_index][rows.local[picked]]
    x = np.asarray(flat_view(rows.leaf.array)[rows.local[picked]])
    floor = MIN_ULPS * ulp(x.real if np.iscomplexobj(x) else x)
    center = np.clip(factor * scale, floor * RATIO, MAX_RELATIVE * scale)
    steps = center[:, None] * RATIO ** np.array([-1.0, 0.0, 1.0])
    steps = np.clip(steps, floor[:, None], (MAX_RELATIVE * scale)[:, None])
    base = float(np.real(ctx.problem.base_value))
    return _read_coordinates(ctx, rows, picked, steps, base, laddered=False)


def _off_kink(ctx: Context, rows: Rows) -> int:
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
            reading = read(ladder.plus, ladder.minus, ladder.up, ladder.down, ladder.analytic,
                           base, _sigma(ctx, rows))  # fmt: skip
            if reading.kink[0] or not math.isfinite(float(reading.refined[0])):
                continue
            rows.analytic[r] = analytic
            rows.status[r] = Status.MEASURED
            rows.off_kink[r] = True
            rows.apply(np.array([r]), reading, ctx.thresholds[1], flat_is_zero=ctx.noise_measured)
    return evaluations
