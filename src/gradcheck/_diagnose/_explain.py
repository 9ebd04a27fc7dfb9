"""Turn a parameter's settled evidence into its ParamReport and its findings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from .._compare import Judgement, element_errors, judge, normalized_difference
from .._norms import stable_norm
from .._results import (
    DEFAULT_THRESHOLDS,
    DEFAULT_WORST,
    ElementError,
    Elements,
    Finding,
    ParamReport,
    Verdict,
    overall,
)
from .._tree import FlatParams
from . import _benign
from ._directional import explain_directions
from ._elements import ParamData
from ._mistakes import explain
from ._rows import UNRESOLVED, Rows, Status


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Numeric against analytic values, compared without evaluating anything more."""

    difference: float
    verdict: Verdict
    passed: bool
    params: tuple[ParamReport, ...]
    checked: int


def compare(
    indices: NDArray[np.intp],
    numeric: NDArray[np.float64],
    analytic: NDArray[np.float64],
    flat: FlatParams,
    thresholds: tuple[float, float, float] = DEFAULT_THRESHOLDS,
    worst: int = DEFAULT_WORST,
    error: NDArray[np.float64] | None = None,
) -> Comparison:
    """Compare numeric estimates at ``indices`` of theta with the analytic gradient.

    The verdicts a check would give from these numbers alone (no ladder, no re-estimation):
    a nan numeric value leaves its element unresolved, a nan analytic value is a bug.

    Args:
        indices: ascending coordinates of theta that were estimated.
        numeric: the estimates at those coordinates.
        analytic: the analytic gradient over all of theta.
        flat: the parameter leaves.
        thresholds: the verdict thresholds.
        worst: how many worst elements to keep per parameter.
        error: error bars of the estimates (zeros: exact).
    """
    numeric = np.asarray(numeric, dtype=np.float64)
    bars = np.zeros(len(indices)) if error is None else np.asarray(error, dtype=np.float64)
    params, parts = [], []
    for leaf_index, leaf in enumerate(flat.leaves):
        lo, hi = np.searchsorted(indices, [leaf.offset, leaf.offset + leaf.size])
        mine = slice(int(lo), int(hi))
        status = np.where(np.isfinite(numeric[mine]), Status.MEASURED, Status.NONFINITE)
        rows = Rows(leaf=leaf, leaf_index=leaf_index, local=indices[mine] - leaf.offset,
                    analytic=analytic[indices[mine]].astype(np.float64),
                    numeric=numeric[mine].copy(), error=bars[mine].copy(),
                    step=np.zeros(hi - lo), status=status.astype(np.int8))  # fmt: skip
        difference, error_bar = rows.difference()
        judgement = judge(difference, error_bar, thresholds=thresholds,
                          unresolved=rows.unresolved_reason(),
                          analytic_finite=bool(np.isfinite(rows.analytic).all()))  # fmt: skip
        params.append(param_report(rows, judgement, worst, thresholds[1]))
        parts.append(rows)
    verdict, passed = overall(p.verdict for p in params)
    return Comparison(difference=overall_difference(parts), verdict=verdict, passed=passed,
                      params=tuple(params), checked=len(indices))  # fmt: skip


def overall_difference(rows: Sequence[Rows]) -> float:
    """The textbook number over everything measured with finite values on both sides.

    In the directional modes, the largest directional difference.
    """
    if any(r.directions is not None for r in rows):
        values = [r.difference()[0] for r in rows]
        finite = [v for v in values if not math.isnan(v)]
        return max(finite) if len(finite) == len(values) and finite else math.nan
    numeric = np.concatenate([r.numeric[r.measured()] for r in rows])
    analytic = np.concatenate([r.analytic[r.measured()] for r in rows])
    finite = np.isfinite(analytic)
    if not finite.any() and any(np.isin(r.status, UNRESOLVED).any() for r in rows):
        return math.nan  # nothing was measured: no number to give
    return normalized_difference(numeric[finite], analytic[finite])


@dataclass(frozen=True, slots=True, kw_only=True)
class Circumstances:
    """What the findings need to know about the check as a whole."""

    thresholds: tuple[float, float, float]
    worst: int
    hints: Mapping[str, int]
    sigma: float
    eps: float | None
    """The user's step, if pinned."""
    suggested: Mapping[str, float]
    """Per parameter, the step the measured noise calls for."""
    mode: str = "full"


def param_report(
    rows: Rows,
    judgement: Judgement,
    worst: int,
    tolerance: float,
    elements: Rows | None = None,
) -> ParamReport:
    """The ParamReport of one parameter.

    Args:
        rows: its evidence (coordinates, or directions).
        judgement: its settled verdict.
        worst: how many worst elements to list.
        tolerance: the acceptable threshold (elements off by more count as mismatches).
        elements: for direction rows, the coordinates bisection checked (if any).
    """
    leaf = rows.leaf
    listed = rows if rows.directions is None else elements or _no_elements(rows)
    difference, error_bar = rows.difference()
    report = ParamReport(
        name=leaf.name,
        shape=leaf.shape,
        dtype=str(leaf.dtype),
        size=leaf.size,
        checked=len(rows.local),
        difference=difference,
        verdict=judgement.verdict,
        passed=judgement.verdict.passes,
        worst=(),
        mismatches=0,
        norm_analytic=0.0,
        norm_numeric=0.0,
        nonfinite=int(
            np.count_nonzero(~np.isfinite(rows.analytic) | (rows.status == Status.NONFINITE))
        ),
        excluded=int(np.count_nonzero(rows.status == Status.SUBGRADIENT)),
        error_bar=error_bar,
        unresolved=int(np.count_nonzero(np.isin(rows.status, UNRESOLVED))),
    )
    if listed is not None:
        report = _element_fields(report, listed, worst, tolerance)
    if rows.directions is not None:
        ok = rows.measured()
        part = rows.leaf_analytic if rows.leaf_analytic is not None else np.zeros(0)
        rms = float(np.sqrt(np.mean(rows.numeric[ok] ** 2))) if ok.any() else 0.0
        report = replace(report, checked=leaf.size, directions=len(rows.directions),
                         norm_analytic=float(stable_norm(part)), norm_numeric=rms)  # fmt: skip
    return report


def _no_elements(rows: Rows) -> Rows:
    """Empty coordinate rows: a tensor checked only along directions lists no elements."""
    nothing = np.empty(0)
    return Rows(leaf=rows.leaf, leaf_index=rows.leaf_index, local=np.empty(0, dtype=np.intp),
                analytic=nothing, numeric=nothing, error=nothing, step=nothing,
                status=np.empty(0, dtype=np.int8))  # fmt: skip


def _element_fields(report: ParamReport, rows: Rows, worst: int, tolerance: float) -> ParamReport:
    """The report with the worst elements, mismatches, norms and elements of coordinate rows."""
    ok = rows.measured()
    a, n = rows.analytic, rows.numeric
    finite = np.isfinite(a) & np.isfinite(n)
    gaps = np.where(finite, np.abs(a - n), 0.0)
    # Non-finite and unresolved first (least trustworthy), subgradients last (explained).
    key = np.where(ok, -gaps, -np.inf)
    key = np.where(rows.status == Status.SUBGRADIENT, np.inf, key)
    order = np.argsort(key, kind="stable")[:worst]
    index = [rows.leaf.index_of(int(i)) for i in rows.local]
    coordinates = rows.local + rows.leaf.offset
    listed: tuple[ElementError, ...] = element_errors(index, coordinates, a, n, order)
    kinked = rows.status == Status.SUBGRADIENT
    elements = Elements(local=rows.local.copy(), analytic=a.copy(), numeric=n.copy(),
                        excluded=kinked, error=rows.error.copy())  # fmt: skip
    return replace(
        report,
        worst=listed,
        mismatches=int(np.count_nonzero(rows.off(tolerance))),
        norm_analytic=float(stable_norm(a[ok])),
        norm_numeric=float(stable_norm(n[ok])),
        elements=elements,
    )


def findings_for(
    rows: Rows,
    judgement: Judgement,
    circumstances: Circumstances,
    elements: Rows | None = None,
    refined: bool = False,
    stopped: bool = False,
) -> list[Finding]:
    """What this parameter's evidence says, most important first.

    Args:
        rows: its evidence.
        judgement: its settled verdict.
        circumstances: the check as a whole.
        elements: for direction rows, the coordinates bisection checked.
        refined: follow-up evaluations were needed to settle it.
        stopped: bisection stopped at its limit of wrong elements.
    """
    leaf = rows.leaf
    c = circumstances
    findings: list[Finding] = []
    verdict = judgement.verdict
    bad_analytic = ~np.isfinite(rows.analytic)
    if bad_analytic.any() and rows.directions is None:
        findings.append(_benign.nonfinite_analytic(leaf, rows.local[bad_analytic].tolist()))
    elif verdict in (Verdict.SUSPICIOUS, Verdict.BUG):
        if rows.directions is not None:
            findings.append(explain_directions(rows, elements, c.hints, c.thresholds[1],
                                               stopped=stopped,
                                               bisect=c.mode == "bisect"))  # fmt: skip
        else:
            findings.append(_mistake(rows, c))
    difference, error_bar = rows.difference()
    if verdict is Verdict.INCONCLUSIVE:
        reason = judgement.reason or "noise"
        unresolved = np.isin(rows.status, UNRESOLVED) & (rows.directions is None)
        where = rows.local[unresolved].tolist()
        edge = rows.one_sided & ~(np.abs(rows.error) <= np.abs(rows.numeric) + 1.0)
        if reason == "noise" and edge.any() and rows.directions is None:
            reason, where = "edge", rows.local[edge].tolist()  # its bar, not the noise
        findings.append(
            _benign.inconclusive(
                leaf,
                reason,
                where=where,
                difference=difference,
                error_bar=error_bar,
                sigma=c.sigma,
                eps=c.eps,
                suggested=c.suggested.get(leaf.name),
            )
        )
    unknown = rows.status == Status.NONFINITE
    if unknown.any() and rows.directions is None:
        findings.append(_benign.nonfinite_numeric(leaf, rows.local[unknown].tolist()))
    if rows.kinks and rows.directions is None:
        moved = rows.local[rows.off_kink].tolist()
        findings.append(_benign.kinks(leaf, rows.kinks, moved=moved))
    edge = rows.one_sided & rows.measured()
    if edge.any() and rows.directions is None:
        findings.append(_benign.domain_edge(leaf, rows.local[edge].tolist()))
    if judgement.reason == "zero":
        ok = rows.measured()
        at_kinks = int(np.count_nonzero(rows.status == Status.SUBGRADIENT))
        findings.append(_benign.negligible(leaf.name, float(stable_norm(rows.error[ok])),
                                           measured=int(ok.sum()), at_kinks=at_kinks))  # fmt: skip
    elif verdict.passes and (difference >= c.thresholds[1] or refined):
        findings.append(_benign.noise(leaf.name, difference, error_bar, rows.refined_steps))
    ok = rows.measured()
    if (
        ok.all()
        and len(ok)
        and not np.any(rows.analytic)
        and not np.any(rows.numeric)
        and judgement.reason != "zero"
    ):
        findings.append(_benign.unused(leaf.name))
    return findings


def _mistake(rows: Rows, c: Circumstances) -> Finding:
    """The likely mistake behind a mismatch, with the convergence evidence behind it."""
    ok = rows.measured()
    local = rows.local[ok]
    theta = np.asarray(rows.leaf.array.real, dtype=np.float64).reshape(-1)[local]
    magnitude = np.abs(rows.analytic[ok]) + np.abs(rows.numeric[ok])
    data = ParamData(
        name=rows.leaf.name,
        shape=rows.leaf.shape,
        local=local,
        analytic=rows.analytic[ok],
        numeric=rows.numeric[ok],
        theta=theta,
        scale=float(np.sqrt(np.mean(magnitude**2))) if len(local) else 0.0,
        tolerance=c.thresholds[1],
        error=rows.error[ok],
    )
    finding = explain(data, c.hints)
    if not rows.convergence:
        return finding
    worst = max(rows.convergence, key=lambda v: abs(rows.analytic[v.row] - v.refined))
    order = 0.0 if abs(worst.order) < 0.05 else worst.order
    index = rows.leaf.index_of(int(rows.local[worst.row]))
    convergence = {
        "index": list(index),
        "steps": worst.steps,
        "errors": worst.errors,
        "order": order,
        "refined": worst.refined,
    }
    if worst.steps and math.isfinite(order) and abs(order) < 0.5:  # never near 2 (truncation)
        evidence = (
            f"the error stays put from step {min(worst.steps):.0e} to {max(worst.steps):.0e} "
            f"(observed order {order:.1f}), so it is not a finite-difference error"
        )
    else:
        evidence = (
            f"re-estimated on a ladder of steps, the numeric value {worst.refined:.6g} still "
            f"differs from the analytic one beyond its error bar"
        )
    message = finding.message.rstrip(".") + f" ({evidence})."
    return replace(finding, message=message, detail={**finding.detail, "convergence": convergence})
