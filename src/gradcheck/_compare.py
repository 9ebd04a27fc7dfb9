"""Compare numeric with analytic gradients: differences, error bars, verdicts.

The measure is the textbook one, ``||numeric - analytic|| / (||numeric|| + ||analytic||)``,
taken over everything checked and over each parameter on its own, so that a wrong bias
vector cannot hide behind large correct weight matrices. Two zero vectors have
difference 0.

A parameter passes only on positive evidence (`judge`): its difference is below the
acceptable threshold, or it lies within error bars that are themselves small enough to
rule out a bug. Whatever the evidence cannot settle — a step that rounded away, a cost
that is not finite, error bars too wide, a kink the analytic value cannot be reconciled
with — is `Verdict.INCONCLUSIVE`, which never passes. The overall verdict and ``passed``
come from the parameters' verdicts through one function, `overall`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ._norms import stable_norm

DEFAULT_THRESHOLDS = (1e-7, 1e-5, 1e-3)
DEFAULT_WORST = 5
CONFIDENCE = 3.0
"""A difference within this many error bars is what finite-difference error alone can give."""


class Verdict(enum.StrEnum):
    """How a parameter (or a whole check) reads against the thresholds (t1, t2, t3).

    ``correct`` < t1 <= ``acceptable`` < t2 <= ``suspicious`` < t3 <= ``bug``; and
    ``inconclusive`` where the evidence could not settle it (never a pass). Severity runs
    correct, acceptable, suspicious, inconclusive, bug.
    """

    CORRECT = "correct"
    ACCEPTABLE = "acceptable"
    SUSPICIOUS = "suspicious"
    INCONCLUSIVE = "inconclusive"
    BUG = "bug"

    @classmethod
    def of(cls, difference: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Verdict:
        """Read a difference against the thresholds (nan reads as a bug)."""
        correct, acceptable, suspicious = thresholds
        if difference < correct:
            return cls.CORRECT
        if difference < acceptable:
            return cls.ACCEPTABLE
        if difference < suspicious:
            return cls.SUSPICIOUS
        return cls.BUG

    @property
    def rank(self) -> int:
        """0 for correct up to 4 for bug, to find the worst of several verdicts."""
        return list(Verdict).index(self)

    @property
    def passes(self) -> bool:
        """Whether this verdict lets a check pass (correct or acceptable)."""
        return self in (Verdict.CORRECT, Verdict.ACCEPTABLE)


def overall(verdicts: Iterable[Verdict]) -> tuple[Verdict, bool]:
    """The verdict of a whole check, and whether it passed: the worst parameter decides.

    The one place where ``passed`` is derived, so a report can never say "correct" and
    not pass, or pass with an inconclusive parameter.
    """
    listed = list(verdicts)
    if not listed:
        return Verdict.INCONCLUSIVE, False
    worst = max(listed, key=lambda v: v.rank)
    return worst, worst.passes


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """A parameter's verdict from its evidence, and whether more evidence could change it."""

    verdict: Verdict
    settled: bool
    """False: more evaluations (other steps, a ladder) could still change the verdict."""
    reason: str | None = None
    """Why it is not settled: "no_step", "nonfinite", "tie", "noise", "unconfirmed"; or why a
    pass needed more than the thresholds: "zero" (zero to within negligible round-off)."""


def judge(
    difference: float,
    error_bar: float,
    *,
    thresholds: tuple[float, float, float],
    unresolved: str | None = None,
    confirmed: bool = False,
    analytic_finite: bool = True,
    negligible: bool = False,
) -> Judgement:
    """Give one parameter its verdict from its difference and error bar.

    Args:
        difference: the normalized difference over its measured elements (nan: none).
        error_bar: the difference that finite-difference error alone would produce.
        thresholds: (correct, acceptable, suspicious).
        unresolved: why some checked elements have no evidence ("no_step", "nonfinite",
            "tie"), or None.
        confirmed: a wrong element was confirmed on a ladder of steps (this settles a mismatch
            the difference shows; on its own, within the parameter's error bars, it does not
            make one).
        analytic_finite: every analytic value is finite.
        negligible: the analytic gradient is zero to within the numeric one's error bar, and
            that bar is negligible against the gradients of the whole check: the parameter
            does not matter at this point (a bias before a normalization), verified as zero.

    A mismatch beyond the error bars decides over unresolved elements (a bug is a bug);
    unresolved elements decide over agreement elsewhere (no evidence is no pass). A pass
    needs error bars narrow enough to rule out a bug (``3 * error_bar`` below the bug
    threshold): numbers that agree only because both are lost in round-off (a numeric 0
    from a step too small to move the cost, next to an analytic 0) prove nothing.
    """
    _, acceptable, suspicious = thresholds
    if not analytic_finite:
        return Judgement(verdict=Verdict.BUG, settled=True)
    measured = not math.isnan(difference)
    beyond = measured and difference >= acceptable and difference > CONFIDENCE * error_bar
    if beyond:
        return Judgement(verdict=Verdict.of(difference, thresholds), settled=confirmed,
                         reason=None if confirmed else "unconfirmed")  # fmt: skip
    if unresolved is not None or not measured:
        return Judgement(verdict=Verdict.INCONCLUSIVE, settled=False,
                         reason=unresolved or "no_step")  # fmt: skip
    resolved = CONFIDENCE * error_bar < suspicious
    if difference < acceptable and resolved:
        return Judgement(verdict=Verdict.of(difference, thresholds), settled=True)
    if negligible and not confirmed:
        return Judgement(verdict=Verdict.ACCEPTABLE, settled=True, reason="zero")
    if resolved:
        return Judgement(verdict=Verdict.ACCEPTABLE, settled=True)
    return Judgement(verdict=Verdict.INCONCLUSIVE, settled=False, reason="noise")


@dataclass(frozen=True, slots=True, kw_only=True)
class ElementError:
    """One checked element of a parameter: both gradient values and how far apart they are."""

    index: tuple[int, ...]
    """Index into the parameter's shape."""
    coordinate: int
    """Index into theta, the concatenation of all parameters."""
    analytic: float
    numeric: float
    abs_error: float
    """``|analytic - numeric|``."""
    rel_error: float
    """``|analytic - numeric| / (|analytic| + |numeric|)``, 0 when both are 0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Elements:
    """Every checked element of one parameter, for plots (kept out of JSON: it can be large)."""

    local: NDArray[np.intp]
    """[k] flat (C-order) indices into the parameter."""
    analytic: NDArray[np.float64]
    numeric: NDArray[np.float64]
    excluded: NDArray[np.bool_]
    """[k] verified at a kink (the analytic value lies between the one-sided slopes) and left
    out of the difference."""
    error: NDArray[np.float64] | None = None
    """[k] the error bar of each numeric value (None: not known)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamReport:
    """The comparison for one parameter array."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    size: int
    checked: int
    """How many of its elements were compared (all of them in mode="full")."""
    difference: float
    verdict: Verdict
    passed: bool
    worst: tuple[ElementError, ...]
    """The elements with the largest ``|analytic - numeric|``, worst first."""
    mismatches: int
    """Checked elements off by more than the second threshold, relative to their magnitude
    plus the parameter's typical gradient magnitude (so round-off on near-zero elements
    does not count)."""
    norm_analytic: float
    norm_numeric: float
    nonfinite: int
    """Checked elements whose numeric or analytic value is nan or inf (not in the difference)."""
    excluded: int = 0
    """Checked elements verified at a kink of the cost (the analytic value is a valid
    one-sided slope), left out of the difference."""
    error_bar: float = math.nan
    """The difference that finite-difference error alone (round-off and truncation) would
    give, from the measured noise of the cost and the steps used; nan where not estimated."""
    directions: int = 0
    """Random directions it was checked along (directional and bisect modes; 0 otherwise)."""
    unresolved: int = 0
    """Checked elements (or directions) with no usable evidence: a step that rounded away, a
    cost that was not finite, a kink the analytic value lies outside of."""
    elements: Elements | None = field(default=None, repr=False, compare=False)
    """All checked elements' values (None for a report read back from JSON)."""


def normalized_difference(numeric: NDArray[np.float64], analytic: NDArray[np.float64]) -> float:
    """Return ``||numeric - analytic|| / (||numeric|| + ||analytic||)``, 0 when both are zero."""
    denominator = float(stable_norm(numeric) + stable_norm(analytic))
    if denominator == 0.0:
        return 0.0
    return float(stable_norm(numeric - analytic)) / denominator


def relative_error_bar(
    error: NDArray[np.float64], numeric: NDArray[np.float64], analytic: NDArray[np.float64]
) -> float:
    """The normalized difference that errors of size ``error`` alone would produce."""
    denominator = float(stable_norm(numeric) + stable_norm(analytic))
    norm = float(stable_norm(error))
    if denominator == 0.0:
        return 0.0 if norm == 0.0 else math.inf
    return norm / denominator


def elements_off(
    analytic: NDArray[np.float64], numeric: NDArray[np.float64], tolerance: float
) -> NDArray[np.bool_]:
    """Elements whose error exceeds ``tolerance`` times their magnitude plus the typical one.

    Adding the parameter's typical gradient magnitude (the RMS of ``|a| + |n|``) keeps
    round-off on near-zero elements from counting as a disagreement.
    """
    magnitude = np.abs(analytic) + np.abs(numeric)
    scale = float(np.sqrt(np.mean(magnitude**2))) if len(magnitude) else 0.0
    return np.abs(analytic - numeric) >= tolerance * (magnitude + scale)


def directional_difference(
    analytic: NDArray[np.float64],
    numeric: NDArray[np.float64],
    error: NDArray[np.float64],
    norm: float,
) -> tuple[float, float]:
    """(difference, error bar) of a tensor checked along k directions.

    The difference is the largest per-direction gap relative to twice the typical size of
    a projection, ``2 max(||a h||, rms(numeric))``; the error bar is the largest gap the
    round-off and truncation of one direction could give, on the same scale.

    Args:
        analytic: [k] analytic projections.
        numeric: [k] numeric projections.
        error: [k] error bars of the numeric projections.
        norm: ``||a h||``, the typical size of an analytic projection.
    """
    if not len(analytic):
        return math.nan, math.nan
    largest = float(np.max(np.abs(numeric), initial=0.0))
    rms = largest * float(np.sqrt(np.mean((numeric / largest) ** 2))) if largest > 0 else 0.0
    scale = 2 * max(norm, rms)
    gaps = np.abs(analytic - numeric)
    if scale == 0:  # both sides 0: agreement, but only as good as the error bars
        return (0.0 if not np.any(gaps) else math.inf), (0.0 if not np.any(error) else math.inf)
    return float(gaps.max()) / scale, float(error.max()) / scale


def element_errors(
    name_index: Sequence[tuple[int, ...]],
    coordinates: NDArray[np.intp],
    analytic: NDArray[np.float64],
    numeric: NDArray[np.float64],
    order: NDArray[np.intp],
) -> tuple[ElementError, ...]:
    """The `ElementError` of each row listed in ``order``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_error = np.abs(analytic - numeric)
        magnitude = np.abs(analytic) + np.abs(numeric)
        rel_error = np.where(magnitude > 0, abs_error / magnitude, 0.0)
    return tuple(
        ElementError(
            index=name_index[int(k)],
            coordinate=int(coordinates[k]),
            analytic=float(analytic[k]),
            numeric=float(numeric[k]),
            abs_error=float(abs_error[k]),
            rel_error=float(rel_error[k]),
        )
        for k in order
    )
