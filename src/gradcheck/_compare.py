"""Compare numeric with analytic gradients: normalized differences, element errors, verdicts.

The measure is the textbook one, ``||numeric - analytic|| / (||numeric|| + ||analytic||)``,
taken over everything checked and over each parameter on its own, so that a
wrong bias vector cannot hide behind large correct weight matrices. Two zero
vectors have difference 0.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ._tree import FlatParams, Leaf

if TYPE_CHECKING:
    from ._engine import DirectionalResult

DEFAULT_THRESHOLDS = (1e-7, 1e-5, 1e-3)
DEFAULT_WORST = 5


class Verdict(enum.StrEnum):
    """How a normalized difference reads against the thresholds (t1, t2, t3).

    ``correct`` < t1 <= ``acceptable`` < t2 <= ``suspicious`` < t3 <= ``bug``.
    """

    CORRECT = "correct"
    ACCEPTABLE = "acceptable"
    SUSPICIOUS = "suspicious"
    BUG = "bug"

    @classmethod
    def of(cls, difference: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Verdict:
        """Read a difference against the thresholds."""
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
        """0 for correct up to 3 for bug, to find the worst of several verdicts."""
        return list(Verdict).index(self)

    @property
    def passes(self) -> bool:
        """Whether this verdict alone lets a check pass (correct or acceptable)."""
        return self in (Verdict.CORRECT, Verdict.ACCEPTABLE)


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
    """[k] left out of the verdict (a kink)."""


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
    """Checked elements left out of the verdict because the cost has a kink there."""
    error_bar: float = math.nan
    """The difference that finite-difference error alone (round-off and truncation) would
    give, estimated from extra evaluations at other steps; nan where not estimated."""
    directions: int = 0
    """Random directions it was checked along (directional and bisect modes; 0 otherwise)."""
    elements: Elements | None = field(default=None, repr=False, compare=False)
    """All checked elements' values (None for a report read back from JSON)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Everything the comparison found, before diagnosis."""

    difference: float
    verdict: Verdict
    params: tuple[ParamReport, ...]
    checked: int
    thresholds: tuple[float, float, float]


def normalized_difference(numeric: NDArray[np.float64], analytic: NDArray[np.float64]) -> float:
    """Return ``||numeric - analytic|| / (||numeric|| + ||analytic||)``, 0 when both are zero."""
    denominator = float(np.linalg.norm(numeric) + np.linalg.norm(analytic))
    if denominator == 0.0:
        return 0.0
    return float(np.linalg.norm(numeric - analytic)) / denominator


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


def compare(
    indices: NDArray[np.intp],
    numeric: NDArray[np.float64],
    analytic: NDArray[np.float64],
    flat: FlatParams,
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS,
    worst: int = DEFAULT_WORST,
    excluded: NDArray[np.bool_] | None = None,
) -> Comparison:
    """Compare the numeric estimates at ``indices`` of theta with the analytic gradient.

    Args:
        indices: ascending coordinates of theta that were estimated.
        numeric: the estimates at those coordinates (nan where the cost was not finite).
        analytic: the analytic gradient over all of theta.
        flat: the parameter leaves, for names and shapes.
        thresholds: the verdict thresholds.
        worst: how many worst elements to keep per parameter.
        excluded: [k] elements to leave out of the verdict (kinks), aligned with indices.
    """
    analytic_checked = analytic[indices]
    finite = np.isfinite(numeric) & np.isfinite(analytic_checked)
    skip = np.zeros(len(indices), dtype=bool) if excluded is None else excluded
    params = []
    for leaf in flat.leaves:
        lo, hi = np.searchsorted(indices, [leaf.offset, leaf.offset + leaf.size])
        params.append(
            _compare_leaf(
                leaf,
                indices[lo:hi],
                numeric[lo:hi],
                analytic_checked[lo:hi],
                finite[lo:hi],
                skip[lo:hi],
                thresholds,
                worst,
            )
        )
    usable = finite & ~skip
    difference = normalized_difference(numeric[usable], analytic_checked[usable])
    return Comparison(
        difference=difference,
        verdict=Verdict.of(difference, thresholds),
        params=tuple(params),
        checked=len(indices),
        thresholds=thresholds,
    )


def _compare_leaf(
    leaf: Leaf,
    coordinates: NDArray[np.intp],
    numeric: NDArray[np.float64],
    analytic: NDArray[np.float64],
    finite: NDArray[np.bool_],
    skip: NDArray[np.bool_],
    thresholds: tuple[float, float, float],
    worst: int,
) -> ParamReport:
    usable = finite & ~skip
    numeric_ok, analytic_ok = numeric[usable], analytic[usable]
    difference = normalized_difference(numeric_ok, analytic_ok)
    verdict = Verdict.of(difference, thresholds)
    abs_error = np.abs(analytic - numeric)
    magnitude = np.abs(analytic) + np.abs(numeric)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_error = np.where(magnitude > 0, abs_error / magnitude, 0.0)
    mismatches = int(np.count_nonzero(elements_off(analytic_ok, numeric_ok, thresholds[1])))
    # Non-finite elements sort first (the least trustworthy), kinks last (explained).
    key = np.where(finite, -abs_error, -np.inf)
    key = np.where(skip, np.inf, key)
    order = np.argsort(key, kind="stable")[:worst]
    elements = tuple(
        ElementError(
            index=leaf.index_of(int(coordinates[k]) - leaf.offset),
            coordinate=int(coordinates[k]),
            analytic=float(analytic[k]),
            numeric=float(numeric[k]),
            abs_error=float(abs_error[k]),
            rel_error=float(rel_error[k]),
        )
        for k in order
    )
    nonfinite = int(np.count_nonzero(~finite))
    return ParamReport(
        name=leaf.name,
        shape=leaf.shape,
        dtype=str(leaf.dtype),
        size=leaf.size,
        checked=len(coordinates),
        difference=difference,
        verdict=verdict,
        passed=verdict.passes and nonfinite == 0,
        worst=elements,
        mismatches=mismatches,
        norm_analytic=float(np.linalg.norm(analytic_ok)),
        norm_numeric=float(np.linalg.norm(numeric_ok)),
        nonfinite=nonfinite,
        excluded=int(np.count_nonzero(skip & finite)),
        elements=Elements(
            local=coordinates - leaf.offset,
            analytic=analytic,
            numeric=numeric,
            excluded=skip.copy(),
        ),
    )


def compare_directional(
    result: DirectionalResult,
    analytic: NDArray[np.float64],
    flat: FlatParams,
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS,
    worst: int = DEFAULT_WORST,
) -> Comparison:
    """Compare along random directions per tensor, plus any elements bisection checked.

    A tensor's difference is the largest per-direction error relative to twice its
    analytic norm (see `Projection.difference`); the overall difference is the largest
    over tensors.
    """
    order = np.argsort(np.asarray(result.coordinates, dtype=np.intp), kind="stable")
    coordinates = np.asarray(result.coordinates, dtype=np.intp)[order]
    numeric = np.asarray(result.values, dtype=np.float64)[order]
    params = []
    for leaf, projection in zip(flat.leaves, result.projections, strict=True):
        lo, hi = np.searchsorted(coordinates, [leaf.offset, leaf.offset + leaf.size])
        mine = coordinates[lo:hi]
        a, n = analytic[mine], numeric[lo:hi]
        finite = np.isfinite(a) & np.isfinite(n)
        elements = _compare_leaf(leaf, mine, n, a, finite, np.zeros(len(mine), dtype=bool),
                                 thresholds, worst)  # fmt: skip
        if projection is None:
            params.append(elements)
            continue
        difference = projection.difference
        part = analytic[leaf.offset : leaf.offset + leaf.size]
        verdict = Verdict.BUG if math.isnan(difference) else Verdict.of(difference, thresholds)
        params.append(
            replace(
                elements,
                checked=leaf.size,
                difference=difference,
                verdict=verdict,
                passed=verdict.passes,
                directions=len(projection.analytic),
                norm_analytic=float(np.linalg.norm(part)),
                norm_numeric=float(np.sqrt(np.mean(projection.numeric**2))),
            )
        )
    differences = [p.difference for p in params if p.directions]
    difference = max(differences, default=0.0)
    return Comparison(
        difference=difference,
        verdict=Verdict.BUG if math.isnan(difference) else Verdict.of(difference, thresholds),
        params=tuple(params),
        checked=flat.size,
        thresholds=thresholds,
    )
