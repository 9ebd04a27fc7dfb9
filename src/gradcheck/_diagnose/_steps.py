"""Read a ladder of steps: the best estimate with its error bar, kinks, the observed order.

Pure functions over the cost at ``x +- s`` for ascending steps s (`engine.Ladder`). Only
steps that realize to distinct, usable displacements count (`_step.distinct`): a ladder
whose steps all rounded to one ulp has one step, not five, and proves nothing.

- **Estimate.** Central differences at each step and their Richardson extrapolations
  between neighbouring steps; the candidate whose neighbours agree best wins, and that
  disagreement plus its round-off (from the measured noise) is its error bar
  (numdifftools' rule). Where the cost is nan on one side of x (a domain edge), one-sided
  differences and their extrapolations stand in.
- **Kink.** The jump between the one-sided slopes, ``(f(x+s) - 2 f(x) + f(x-s)) / s``,
  is constant in s at a kink, grows like s from curvature and falls like 1/s from
  round-off. A kink is claimed only on evidence: over three distinct steps in a row the
  jump exceeds `SIGNAL` times its own round-off error and stays within a factor
  ``sqrt(step ratio)`` from one step to the next, same sign.
- **Order.** How ``|central(s) - analytic|`` changes between the two largest steps:
  about 2 for a right gradient (truncation), about 0 for a wrong one.

References:
    numdifftools (P. A. Brodtkorb) for choosing among extrapolated estimates; Caffe's and
    CS231n's notes on checking max / ReLU / hinge units, BVLC/caffe#1334 for the
    subgradient test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._compare import CONFIDENCE
from .._engine import Ladder, distinct

Estimate = tuple[float, float, float, float]
"""(value, error bar, what the analytic gradient predicts for it, step)."""

SIGNAL = 10.0
"""A one-sided jump counts as real when it exceeds this many times its round-off error."""
RATIO = 4.0
"""Ratio of consecutive steps in a ladder."""
_MIN_LEVERAGE = 2.0
"""Two distinct steps closer than this ratio say too little about how the jump scales."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """Per row of a ladder: the refined estimate, a kink if there is one, convergence."""

    refined: NDArray[np.float64]
    """The best estimate of the derivative (nan: no usable step)."""
    uncertainty: NDArray[np.float64]
    """Its error bar: disagreement with neighbouring estimates plus round-off (inf: none)."""
    expected: NDArray[np.float64]
    """What the analytic gradient predicts for that estimate (the analytic value itself for a
    coordinate)."""
    step: NDArray[np.float64]
    """The step of the estimate chosen."""
    trusted_refined: NDArray[np.float64]
    trusted_uncertainty: NDArray[np.float64]
    trusted_expected: NDArray[np.float64]
    trusted_step: NDArray[np.float64]
    """The best estimate from steps within the parameter's own scale (nan / inf: none)."""
    one_sided: NDArray[np.bool_]
    """The estimate is one-sided: the cost is not finite on the other side of x."""
    flat: NDArray[np.bool_]
    """The cost came back bit for bit the same at every usable step and at x."""
    kink: NDArray[np.bool_]
    """The one-sided slopes differ by a jump that stays put as the step shrinks."""
    left: NDArray[np.float64]
    right: NDArray[np.float64]
    """One-sided slopes at the smallest step of the steady run (nan where no kink)."""
    slope_error: NDArray[np.float64]
    """Error bar of those slopes: round-off and their change over the run."""
    kink_step: NDArray[np.float64]
    """The smallest step of the steady run (nan where no kink)."""
    within: NDArray[np.bool_]
    """At a kink: the analytic value lies between the slopes, within their error bar."""
    order: NDArray[np.float64]
    """Observed order of ``|central(s) - analytic|`` between the two largest usable steps."""
    errors: NDArray[np.float64]
    """[k, S] ``|central(s) - analytic|`` per step (nan where the step is not usable)."""
    steps: NDArray[np.float64]
    """[k, S] the realized step per column (half the central span)."""


def read(
    ladder: Ladder, base: float, sigma: float, trusted: NDArray[np.float64] | None = None
) -> Reading:
    """Read a ladder (see `_read`), with NumPy's overflow and division warnings off.

    Steps near the smallest floats and values near the largest overflow on the way to an
    error bar of inf, which the reading handles; a warning there would reach the user's
    test suite (where warnings are often errors) for nothing.
    """
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _read(ladder, base, sigma, trusted)


def _read(
    ladder: Ladder, base: float, sigma: float, trusted: NDArray[np.float64] | None = None
) -> Reading:
    """Read a ladder: the cost at ``x +- s`` for k rows and S steps each, steps ascending.

    Args:
        ladder: the costs (nan: not evaluated or not finite), the steps actually taken up
            and down (0: vanished) and the central differences the analytic gradient
            predicts at each step, all [k, S] (the prediction broadcast to it).
        base: the cost at x.
        sigma: the cost's measured noise.
        trusted: [k] the largest step that is surely a derivative of each row's parameter
            (larger ones only refine an estimate they agree with; see `_best`).
    """
    plus, minus, up, down = ladder.plus, ladder.minus, ladder.up, ladder.down
    k, count = plus.shape
    limit = np.full(k, np.inf) if trusted is None else np.asarray(trusted, dtype=np.float64)
    analytic = np.broadcast_to(ladder.analytic, (k, count))
    new = distinct(up, down)
    both = new & np.isfinite(plus) & np.isfinite(minus)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        central = (plus - minus) / (up + down)
        errors = np.where(both, np.abs(central - analytic), np.nan)
        rows_sigma = _row_noise(central, up + down, both, sigma)
        central_noise = rows_sigma[:, None] * math.sqrt(2) / (up + down)
    out = {name: np.full(k, np.nan) for name in
           ("refined", "uncertainty", "expected", "step", "left", "right", "slope_error",
            "kink_step", "order", "trusted_refined", "trusted_uncertainty", "trusted_expected",
            "trusted_step")}  # fmt: skip
    out["uncertainty"][:] = np.inf
    out["trusted_uncertainty"][:] = np.inf
    flags = {name: np.zeros(k, dtype=bool) for name in ("one_sided", "kink", "within", "flat")}
    with np.errstate(invalid="ignore"):
        unmoved = (plus == base) & (minus == base)
    flags["flat"][:] = np.all(unmoved | ~both, axis=1) & both.any(axis=1)
    steps = (up + down) / 2
    for r in range(k):
        columns = np.flatnonzero(both[r])
        if len(columns) >= 2:
            chosen = _best(central[r, columns], central_noise[r, columns], steps[r, columns],
                           analytic[r, columns], order=2, trusted=limit[r])  # fmt: skip
        elif not (np.isfinite(plus[r]).all() and np.isfinite(minus[r]).all()):
            # One-sided differences only at a domain edge, where the evidence says so: the
            # cost was nan or inf on a side (a step that merely rounded away is no edge).
            chosen = _one_sided(plus[r], minus[r], up[r], down[r], analytic[r], base,
                                rows_sigma[r], limit[r])  # fmt: skip
            flags["one_sided"][r] = chosen is not None
        else:
            chosen = None
        if chosen is not None:
            best, safe = chosen
            out["refined"][r], out["uncertainty"][r], out["expected"][r], out["step"][r] = best
            if safe is not None:
                (out["trusted_refined"][r], out["trusted_uncertainty"][r],
                 out["trusted_expected"][r], out["trusted_step"][r]) = safe  # fmt: skip
        kink = _kink(plus[r, columns], minus[r, columns], up[r, columns], down[r, columns],
                     base, rows_sigma[r])  # fmt: skip
        if kink is not None:
            left, right, slope_error, first = kink
            a = float(analytic[r, columns[0]])
            flags["kink"][r] = True
            out["left"][r], out["right"][r], out["slope_error"][r] = left, right, slope_error
            out["kink_step"][r] = steps[r, columns[first]]
            flags["within"][r] = (
                min(left, right) - slope_error <= a <= max(left, right) + slope_error
            )
        if len(columns) >= 2:
            last, previous = columns[-1], columns[-2]
            with np.errstate(divide="ignore", invalid="ignore"):
                out["order"][r] = np.log(errors[r, last] / errors[r, previous]) / np.log(
                    steps[r, last] / steps[r, previous]
                )
    return Reading(errors=errors, steps=steps, **out, **flags)


def _row_noise(
    central: NDArray[np.float64],
    span: NDArray[np.float64],
    usable: NDArray[np.bool_],
    sigma: float,
) -> NDArray[np.float64]:
    """[k] the noise each row's ladder shows, at least the measured one.

    The noise measured along a couple of coordinates can be smaller than another
    coordinate's (one that enters many terms of a float32 cost). The two smallest usable
    steps of a row tell: their central differences differ by about the round-off of the
    smaller one, ``noise * sqrt(2) / span``, unless truncation dominates there (then this
    overstates the noise, which only widens error bars).
    """
    out = np.full(len(central), float(sigma))
    for r in range(len(central)):
        columns = np.flatnonzero(usable[r])
        if len(columns) >= 2:
            first, second = columns[0], columns[1]
            gap = abs(float(central[r, first] - central[r, second]))
            out[r] = max(sigma, gap * float(span[r, first]) / math.sqrt(2))
        # Where the cost did not move at all (plus, minus and base identical) its resolution
        # is coarser than the change the slope seen at larger steps predicts across that span.
        moved = np.abs(central[r, columns]) > 0
        if moved.any() and not moved.all():
            still = columns[~moved]
            widest = float(span[r, still].max())
            slope = float(np.median(np.abs(central[r, columns[moved]])))
            out[r] = max(out[r], slope * widest / math.sqrt(12))
    return out


def _best(
    values: NDArray[np.float64],
    noise: NDArray[np.float64],
    steps: NDArray[np.float64],
    analytic: NDArray[np.float64],
    order: int,
    trusted: float = math.inf,
) -> tuple[Estimate, Estimate | None] | None:
    """The estimate whose neighbours agree best, among differences and their extrapolations.

    Steps beyond ``trusted`` (larger than the parameter's own scale allows) may sit on a
    plateau of a different regime, where neighbours agree on a wrong value. So two estimates
    come back: the best of all, and the best from trusted steps only (None if there are
    none); `_rows.Rows.apply` decides which one may speak.

    Args:
        values: estimates at ascending steps (one row, usable steps only).
        noise: their round-off error bars.
        steps: the steps.
        analytic: what the analytic gradient predicts at each step.
        order: the leading error order of the estimates (2 central, 1 one-sided).
        trusted: the largest step that is surely a derivative of this parameter.

    Returns:
        (best, trusted best), each (estimate, error bar, analytic prediction, step); None with
        fewer than two steps.
    """
    if len(values) < 2:
        return None
    ratio = (steps[1:] / steps[:-1]) ** order
    richardson = (ratio * values[:-1] - values[1:]) / (ratio - 1)
    richardson_noise = np.hypot(ratio * noise[:-1], noise[1:]) / (ratio - 1)
    richardson_analytic = (ratio * analytic[:-1] - analytic[1:]) / (ratio - 1)
    found: list[tuple[float, float, float, float, float]] = []
    # Central differences err like s**2 and their extrapolations like s**4; one-sided ones
    # like s and s**2.
    for family, family_noise, predicted, where, reach, rate in (
        (values, noise, analytic, steps, steps, order),
        (richardson, richardson_noise, richardson_analytic, steps[:-1], steps[1:], 2 * order),
    ):
        if len(family) < 2:
            continue
        error = _error_bars(family, family_noise, where, rate)
        found += zip(family.tolist(), error.tolist(), predicted.tolist(), where.tolist(),
                     reach.tolist(), strict=True)  # fmt: skip
    if not found:
        return None
    best = min(found, key=lambda c: c[1])
    inside = [c for c in found if c[4] <= trusted]
    safe = min(inside, key=lambda c: c[1]) if inside else None
    return best[:4], None if safe is None else safe[:4]


def _error_bars(
    family: NDArray[np.float64],
    noise: NDArray[np.float64],
    steps: NDArray[np.float64],
    rate: int,
) -> NDArray[np.float64]:
    """Error bar of each estimate in a family from its neighbours (numdifftools' rule).

    If the leading remaining error grows like ``s**rate``, the gap to the next larger step
    is about ``(ratio**rate - 1)`` times an estimate's own truncation error; the gap to the
    next smaller step, less that neighbour's round-off, is about once it. Twice the larger
    reading, plus the estimate's own round-off, is its error bar. The largest step has no
    larger neighbour: its truncation is known only to within its smaller neighbour's gap and
    round-off (two noisy estimates can agree by chance).
    """
    gaps = np.abs(np.diff(family))
    growth = (steps[1:] / steps[:-1]) ** rate - 1
    truncation = np.zeros(len(family))
    truncation[:-1] = gaps / growth  # from the next larger step
    excess = np.maximum(gaps - CONFIDENCE * noise[:-1], 0.0)  # from the next smaller step
    truncation[1:-1] = np.maximum(truncation[1:-1], excess[:-1])
    truncation[-1] = max(float(gaps[-1]), float(noise[-2]))
    return 2 * truncation + noise


def _one_sided(
    plus: NDArray[np.float64],
    minus: NDArray[np.float64],
    up: NDArray[np.float64],
    down: NDArray[np.float64],
    analytic: NDArray[np.float64],
    base: float,
    sigma: float,
    trusted: float,
) -> tuple[Estimate, Estimate | None] | None:
    """Forward or backward differences on the side where the cost is finite (a domain edge)."""
    found = []
    for values, steps, sign in ((plus, up, 1.0), (minus, down, -1.0)):
        new = steps > 0
        new[1:] &= steps[1:] != steps[:-1]
        ok = np.flatnonzero(new & np.isfinite(values))
        if len(ok) < 2:
            continue
        slopes = sign * (values[ok] - base) / steps[ok]
        noise = sigma * math.sqrt(2) / steps[ok]
        chosen = _best(slopes, noise, steps[ok], analytic[ok], order=1, trusted=trusted)
        if chosen is not None:
            found.append(chosen)
    return min(found, key=lambda c: c[0][1]) if found else None


def _kink(
    plus: NDArray[np.float64],
    minus: NDArray[np.float64],
    up: NDArray[np.float64],
    down: NDArray[np.float64],
    base: float,
    sigma: float,
) -> tuple[float, float, float, int] | None:
    """(left, right, slope error, position) if the jump between the one-sided slopes is steady.

    Position is the index of the smallest step of the steady run; None when no run.

    Args:
        plus: the cost at x + s over the usable, distinct steps of one row (ascending).
        minus: the cost at x - s there.
        up: realized upward steps.
        down: realized downward steps.
        base: the cost at x.
        sigma: the cost's measured noise.
    """
    if len(plus) < 3:
        return None
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        right = (plus - base) / up
        left = (base - minus) / down
        jump = right - left
        jump_noise = sigma * np.sqrt(1 / up**2 + 1 / down**2 + (1 / up + 1 / down) ** 2)
        signal = np.abs(jump) > SIGNAL * jump_noise  # an infinite noise shows no signal
        steps = (up + down) / 2
        leverage = steps[1:] / steps[:-1]
        change = np.abs(jump[1:] / jump[:-1])
    steady = (
        signal[:-1]
        & signal[1:]
        & (np.sign(jump[:-1]) == np.sign(jump[1:]))
        & (leverage >= _MIN_LEVERAGE)
        & (change >= leverage**-0.5)
        & (change <= leverage**0.5)
    )
    runs = np.flatnonzero(steady[:-1] & steady[1:])
    if not len(runs):
        return None
    first = int(runs[0])
    roundoff = CONFIDENCE * sigma * math.sqrt(2) / min(float(up[first]), float(down[first]))
    drift = max(abs(float(right[first + 1] - right[first])),
                abs(float(left[first + 1] - left[first])))  # fmt: skip
    return float(left[first]), float(right[first]), roundoff + drift, first
