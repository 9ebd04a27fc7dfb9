"""What the cost does as the step changes: error bars, convergence order, kinks.

Pure functions over the values of a step ladder (`engine.StepProbe`): for each
probed coordinate, the cost at ``x +- s`` for steps ``s = h * 4**j``.

References:
    Central differences err like C h**2 (truncation) plus eps*|f|/h (round-off); a
    wrong analytic value leaves an error that does not shrink with h. One-sided slopes
    that differ by a jump that stays put as h shrinks mean a kink (Caffe's and CS231n's
    notes on checking max / ReLU / hinge units; BVLC/caffe#1334 for the subgradient test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LADDER = (-2, -1, 0, 1, 2)
"""Exponents j of the step ladder ``h * 4**j`` around the step h of the check."""
RATIO = 4.0

_SIGNAL = 10.0
"""A one-sided jump counts as real when it exceeds this many times the round-off noise."""
_STEADY = (0.5, 2.0)
"""Range of the ratio of jumps at steps 4x apart that counts as constant."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepAnalysis:
    """Per probed coordinate: kink or not, a refined derivative, and the observed order."""

    kink: NDArray[np.bool_]
    """The one-sided slopes differ by a jump that does not shrink with the step."""
    left: NDArray[np.float64]
    right: NDArray[np.float64]
    """One-sided slopes at the smallest step that crosses the kink (nan where no kink)."""
    within: NDArray[np.bool_]
    """At a kink: the analytic value lies between the one-sided slopes (a valid subgradient)."""
    refined: NDArray[np.float64]
    """The best central-difference estimate over the ladder (Richardson-extrapolated)."""
    uncertainty: NDArray[np.float64]
    """Its error estimate: disagreement between neighbouring steps, and round-off."""
    order: NDArray[np.float64]
    """Observed order of ``|central(h) - analytic|`` between the two largest steps:
    about 2 for a right gradient (truncation), about 0 for a wrong one."""
    errors: NDArray[np.float64]
    """[k, S] ``|central(s) - analytic|`` per step, for the report's convergence plot."""


def analyze(
    plus: NDArray[np.float64],
    minus: NDArray[np.float64],
    up: NDArray[np.float64],
    down: NDArray[np.float64],
    base: float,
    analytic: NDArray[np.float64],
    resolution: float,
) -> StepAnalysis:
    """Read a step ladder: kinks, refined derivatives, observed convergence order.

    Args:
        plus: [k, S] the cost at x + s, steps ascending.
        minus: [k, S] the cost at x - s.
        up: [k, S] the steps actually taken upwards.
        down: [k, S] the steps actually taken downwards.
        base: the cost at x.
        analytic: [k] the analytic derivatives.
        resolution: machine epsilon of the cost's precision.
    """
    right = (plus - base) / up  # [k, S]
    left = (base - minus) / down
    central = (plus - minus) / (up + down)
    noise = 4 * resolution * max(abs(base), np.finfo(np.float64).tiny) / np.minimum(up, down)

    # The jump between the one-sided slopes, (f(x+s) - 2 f(x) + f(x-s)) / s, is constant in
    # s at a kink, grows like s from curvature and falls like 1/s from round-off: with steps
    # 4x apart, a kink keeps it within a factor 2 over three steps in a row, same sign.
    jump = right - left
    signal = np.abs(jump) > _SIGNAL * noise
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(jump[:, 1:]) / np.abs(jump[:, :-1])
    steady = (
        signal[:, :-1]
        & signal[:, 1:]
        & (np.sign(jump[:, :-1]) == np.sign(jump[:, 1:]))
        & (ratio >= _STEADY[0])
        & (ratio <= _STEADY[1])
    )
    run = steady[:, :-1] & steady[:, 1:]  # two steady pairs: three steps
    kink = run.any(axis=1)
    first = np.argmax(run, axis=1)  # smallest step of the first steady run
    rows = np.arange(len(first))
    lo = np.minimum(left[rows, first], right[rows, first])
    hi = np.maximum(left[rows, first], right[rows, first])
    slack = 0.1 * (hi - lo) + noise[rows, first]
    within = kink & (analytic >= lo - slack) & (analytic <= hi + slack)

    refined, uncertainty = _extrapolate(central, noise)
    errors = np.abs(central - analytic[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        order = np.log(errors[:, -1] / errors[:, -2]) / np.log(RATIO)
    return StepAnalysis(
        kink=kink,
        left=np.where(kink, left[rows, first], np.nan),
        right=np.where(kink, right[rows, first], np.nan),
        within=within,
        refined=refined,
        uncertainty=uncertainty,
        order=order,
        errors=errors,
    )


def _extrapolate(
    central: NDArray[np.float64], noise: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pick, per row, the estimate whose neighbour agrees best (numdifftools' rule).

    Candidates are the central differences and their Richardson extrapolations
    ``(r**2 C(s) - C(r s)) / (r**2 - 1)``, which cancel the h**2 term.
    """
    r2 = RATIO**2
    richardson = (r2 * central[:, :-1] - central[:, 1:]) / (r2 - 1)
    candidates = [central, richardson]
    best = np.full(len(central), np.nan)
    spread = np.full(len(central), np.inf)
    for family in candidates:
        gaps = np.abs(np.diff(family, axis=1)) + noise[:, : family.shape[1] - 1]
        j = np.argmin(gaps, axis=1)
        rows = np.arange(len(j))
        better = gaps[rows, j] < spread
        best = np.where(better, family[rows, j], best)
        spread = np.where(better, gaps[rows, j], spread)
    return best, spread
