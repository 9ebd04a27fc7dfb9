"""The evidence about one parameter: one row per element (or direction) checked.

Every mode fills the same table: full and sample mode one row per coordinate, the
directional modes one row per random direction (plus the coordinates bisection checks).
Each row holds the analytic and the numeric value, the numeric value's error bar, the
step it came from and a status; the verdict reads the table (`difference`) and the
follow-up evaluations update it (`apply`), always keeping the best-resolved evidence.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .._compare import (
    CONFIDENCE,
    directional_difference,
    normalized_difference,
    relative_error_bar,
)
from .._engine import Direction
from .._norms import stable_norm
from .._tree import Leaf
from ._steps import Estimate, Reading


class Status(enum.IntEnum):
    """What a row's evidence is."""

    MEASURED = 0
    """A numeric value with its error bar: compared."""
    SUBGRADIENT = 1
    """At a kink, the analytic value lies between the one-sided slopes: verified, left out of
    the difference."""
    NO_STEP = 2
    """No step moved the coordinate (it rounded away): no evidence."""
    NONFINITE = 3
    """The cost was nan or inf around the point on both sides: no evidence."""
    TIE = 4
    """At a kink, the analytic value lies outside the one-sided slopes: possibly a tie broken
    the other way (right at a nearby point), not verifiable here."""
    FLAT = 5
    """The coordinate moved but the cost did not change at all, while the analytic gradient
    says it should: a cost rounded more coarsely than the step can show."""


UNRESOLVED = (Status.NO_STEP, Status.NONFINITE, Status.TIE, Status.FLAT)
_REASONS = {Status.NO_STEP: "no_step", Status.NONFINITE: "nonfinite", Status.TIE: "tie",
            Status.FLAT: "flat"}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Kink:
    """Where a row crosses a kink of the cost."""

    row: int
    local: int
    """The flat index inside the leaf (coordinate rows; the row number for directions)."""
    analytic: float
    left: float
    right: float
    within: bool
    step: float
    """The smallest step at which the jump was steady."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Convergence:
    """How a confirmed wrong row's error behaved on its ladder of steps."""

    row: int
    steps: list[float]
    errors: list[float]
    order: float
    refined: float


@dataclass(slots=True, kw_only=True)
class Rows:
    """The evidence about one parameter (mutable while the diagnosis settles it)."""

    leaf: Leaf
    leaf_index: int
    local: NDArray[np.intp]
    """Coordinate rows: flat index inside the leaf, ascending. Direction rows: 0..k-1."""
    analytic: NDArray[np.float64]
    numeric: NDArray[np.float64]
    error: NDArray[np.float64]
    """Error bar of each numeric value (round-off; truncation where a ladder measured it)."""
    step: NDArray[np.float64]
    """The step each numeric value came from."""
    status: NDArray[np.int8]
    directions: list[Direction] | None = None
    """The directions of direction rows (None: coordinate rows)."""
    leaf_analytic: NDArray[np.float64] | None = None
    """Direction rows: the analytic gradient over the whole leaf (to project new steps on)."""
    confirmed: NDArray[np.bool_] = field(init=False)
    """A ladder confirmed the row wrong: its error stays put as the step changes."""
    laddered: NDArray[np.bool_] = field(init=False)
    one_sided: NDArray[np.bool_] = field(init=False)
    """The value is a one-sided estimate (the cost is not finite on the other side)."""
    off_kink: NDArray[np.bool_] = field(init=False)
    """The row was settled at a nearby point off its kink (analytic recomputed there)."""
    kinks: list[Kink] = field(default_factory=list)
    convergence: list[Convergence] = field(default_factory=list)
    refined_steps: list[float] = field(default_factory=list)
    """Steps the follow-up evaluations settled on (for the report)."""

    def __post_init__(self) -> None:
        self.confirmed = np.zeros(len(self.local), dtype=bool)
        self.laddered = np.zeros(len(self.local), dtype=bool)
        self.one_sided = np.zeros(len(self.local), dtype=bool)
        self.off_kink = np.zeros(len(self.local), dtype=bool)

    @property
    def is_directional(self) -> bool:
        """Rows are random directions, not coordinates."""
        return self.directions is not None

    def measured(self) -> NDArray[np.bool_]:
        """Rows whose numeric value is compared."""
        measured: NDArray[np.bool_] = (self.status == Status.MEASURED) & np.isfinite(self.numeric)
        return measured

    def unresolved_reason(self) -> str | None:
        """Why some rows have no evidence (the most common reason), or None."""
        reasons = [_REASONS[Status(s)] for s in self.status if Status(s) in UNRESOLVED]
        return max(set(reasons), key=reasons.count) if reasons else None

    def difference(self) -> tuple[float, float]:
        """(difference, error bar) over the measured rows; (nan, nan) when there are none."""
        ok = self.measured()
        if not ok.any():
            none_left = len(self.local) and not np.isin(self.status, UNRESOLVED).any()
            return (0.0, 0.0) if none_left else (math.nan, math.nan)
        a, n, e = self.analytic[ok], self.numeric[ok], self.error[ok]
        if self.directions is not None:
            norm = max(d.scale for d in self.directions)
            return directional_difference(a, n, e, norm)
        return normalized_difference(n, a), relative_error_bar(e, n, a)

    def gradient_scale(self) -> float:
        """Typical gradient magnitude: the RMS of finite analytic values, else numeric ones."""
        for values in (self.analytic, self.numeric):
            finite = values[np.isfinite(values)]
            rms = float(np.sqrt(np.mean(finite**2))) if len(finite) else 0.0
            if rms > 0:
                return rms
        return 0.0

    def negligible(self, reference: float, tolerance: float) -> bool:
        """Whether zero has been verified as well as it matters.

        The analytic gradient is zero within the numeric error bars, and those bars are
        negligible (below ``tolerance`` per element) against the check's typical gradient
        ``reference``.
        """
        ok = self.measured()
        if not ok.any() or not reference > 0:
            return False
        if self.directions is not None:  # a projection of a gradient of size G is G |D|
            lengths = [float(stable_norm(d.displacement)) for d in self.directions]
            reference *= float(np.mean(np.asarray(lengths)[ok]))
        bar = float(stable_norm(self.error[ok]))
        small = float(stable_norm(self.analytic[ok])) <= CONFIDENCE * bar
        return small and CONFIDENCE * bar / math.sqrt(int(ok.sum())) <= tolerance * reference

    def off(self, tolerance: float) -> NDArray[np.bool_]:
        """Measured rows that disagree beyond their error bar and the relative tolerance."""
        ok = self.measured()
        a, n = self.analytic, self.numeric
        with np.errstate(invalid="ignore"):
            gap = np.abs(a - n)
            allowed: float | NDArray[np.float64]
            if self.directions is not None:  # on the scale of the directional difference
                norm = max(d.scale for d in self.directions)
                rms = float(np.sqrt(np.mean(n[ok] ** 2))) if ok.any() else 0.0
                allowed = tolerance * 2 * max(norm, rms)
            else:
                magnitude = np.abs(a) + np.abs(n)
                typical = float(np.sqrt(np.mean(magnitude[ok] ** 2))) if ok.any() else 0.0
                allowed = tolerance * (magnitude + typical)
            beyond = (gap > CONFIDENCE * self.error) & (gap >= allowed)
        return ok & beyond

    def apply(
        self, rows: NDArray[np.intp], reading: Reading, tolerance: float, *, flat_is_zero: bool
    ) -> None:
        """Take a ladder's reading for some rows.

        Its estimate, which measured truncation too, replaces the row's; a ladder with no
        usable step leaves the row as it was. A cost that moved at none of the ladder's steps
        is a measured 0 (within the noise over the largest step) when the cost's noise was
        measured (``flat_is_zero``: a max-pool's other inputs); otherwise its resolution is
        unknown (a coarsely rounded cost) and the row stays without evidence.
        """
        for position, r in enumerate(rows):
            self.laddered[r] = True
            if reading.kink[position]:
                self.status[r] = Status.SUBGRADIENT if reading.within[position] else Status.TIE
                self.kinks.append(
                    Kink(row=int(r), local=int(self.local[r]), analytic=float(self.analytic[r]),
                         left=float(reading.left[position]), right=float(reading.right[position]),
                         within=bool(reading.within[position]),
                         step=float(reading.kink_step[position]))
                )  # fmt: skip
                continue
            if reading.flat[position] and self.status[r] == Status.FLAT and not flat_is_zero:
                continue  # the cost moved at none of these steps either: still no evidence
            chosen = _speaking(reading, position, tolerance)
            if chosen is None:
                continue  # nothing usable on the ladder: keep what the row had
            refined, error, expected, step = chosen
            self.status[r] = Status.MEASURED
            self.numeric[r], self.error[r] = refined, error
            self.analytic[r] = expected
            self.step[r] = step
            self.one_sided[r] = bool(reading.one_sided[position])
            gap = abs(self.analytic[r] - refined)
            wrong = gap > CONFIDENCE * error + tolerance * (abs(self.analytic[r]) + abs(refined))
            self.confirmed[r] = wrong
            if wrong:
                usable = np.isfinite(reading.errors[position])
                self.convergence.append(
                    Convergence(row=int(r), steps=reading.steps[position, usable].tolist(),
                                errors=reading.errors[position, usable].tolist(),
                                order=float(reading.order[position]), refined=refined)
                )  # fmt: skip


def _speaking(reading: Reading, position: int, tolerance: float) -> Estimate | None:
    """The estimate of a ladder that may decide a row.

    The best estimate may use steps larger than the parameter's own scale, where the cost can
    sit on a plateau of another regime (a quadratic part that central differences reproduce
    at any step, bounded parts that fade): stable, and wrong. Agreeing with the analytic
    value there, clearly away from zero, is evidence (a wrong gradient does not match a
    plateau by chance); disagreeing is not, so then only the estimate from trusted steps
    speaks, and if those are all round-off the row stays unresolved rather than wrong.
    """
    best = _estimate(reading.refined, reading.uncertainty, reading.expected, reading.step, position)
    safe = _estimate(reading.trusted_refined, reading.trusted_uncertainty,
                     reading.trusted_expected, reading.trusted_step, position)  # fmt: skip
    if not math.isfinite(best[0]):
        return None
    if best == safe:
        return best
    value, error, expected, _ = best
    agrees = abs(expected - value) <= CONFIDENCE * error + tolerance * (abs(expected) + abs(value))
    if agrees and abs(value) > CONFIDENCE * error:
        return best
    return safe if math.isfinite(safe[0]) else None


def _estimate(*columns_and_position: object) -> Estimate:
    """(value, error bar, analytic prediction, step) of one row of a reading."""
    *columns, position = columns_and_position
    return tuple(float(column[position]) for column in columns)  # type: ignore[index, return-value]
