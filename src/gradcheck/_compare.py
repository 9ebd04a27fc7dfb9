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
come from the parameters' verdicts through one function, `gradcheck._results.overall`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._norms import stable_norm
from ._results import ElementError, Verdict

CONFIDENCE = 3.0
"""A difference within this many error bars is what finite-difference error alone can give."""


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
