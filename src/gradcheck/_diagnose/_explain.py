"""Turn a parameter's settled evidence into its ParamReport and its findings."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from .._compare import (
    ElementError,
    Elements,
    Judgement,
    ParamReport,
    Verdict,
    element_errors,
)
from . import _benign
from ._directional import explain_directions
from ._finding import Finding
from ._mistakes import ParamData, explain
from ._rows import UNRESOLVED, Rows, Status


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
    listed = rows if rows.directions is None else elements
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
        nonfinite=int(np.count_nonzero(~np.isfinite(rows.analytic)
                                       | (rows.status == Status.NONFINITE))),  # fmt: skip
        excluded=int(np.count_nonzero(rows.status == Status.SUBGRADIENT)),
        error_bar=error_bar,
        unresolved=int(np.count_nonzero(np.isin(rows.status, UNRESOLVED))),
    )
    if listed is not None:
        report = replace(report, **_element_fields(listed, worst, tolerance))
    if rows.directions is not None:
        ok = rows.measured()
        part = rows.leaf_analytic if rows.leaf_analytic is not None else np.zeros(0)
        rms = float(np.sqrt(np.mean(rows.numeric[ok] ** 2))) if ok.any() else 0.0
        report = replace(report, checked=leaf.size, directions=len(rows.directions),
                         norm_analytic=float(np.linalg.norm(part)), norm_numeric=rms)  # fmt: skip
    return report


def _element_fields(rows: Rows, worst: int, tolerance: float) -> dict[str, object]:
    """worst, mismatches, norms and elements of coordinate rows."""
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
    return {
        "worst": listed,
        "mismatches": int(np.count_nonzero(rows.off(tolerance))),
        "norm_analytic": float(np.linalg.norm(a[ok])),
        "norm_numeric": float(np.linalg.norm(n[ok])),
        "elements": Elements(local=rows.local.copy(), analytic=a.copy(), numeric=n.copy(),
                             excluded=rows.status == Status.SUBGRADIENT,
                             error=rows.error.copy()),  # fmt: skip
    }


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
                                               stopped=stopped))  # fmt: skip
        else:
            findings.append(_mistake(rows, c))
    difference, error_bar = rows.difference()
    if verdict is Verdict.INCONCLUSIVE:
        reason = judgement.reason or "noise"
        count = int(np.count_nonzero(np.isin(rows.status, UNRESOLVED)))
        findings.append(
            _benign.inconclusive(leaf, reason, count=count, difference=difference,
                                 error_bar=error_bar, sigma=c.sigma, eps=c.eps,
                                 suggested=c.suggested.get(leaf.name))  # fmt: skip
        )
    if rows.kinks and rows.directions is None:
        moved = rows.local[rows.off_kink].tolist()
        findings.append(_benign.kinks(leaf, rows.kinks, moved=moved))
    edge = rows.one_sided & rows.measured()
    if edge.any() and rows.directions is None:
        findings.append(_benign.domain_edge(leaf, rows.local[edge].tolist()))
    if verdict.passes and (difference >= c.thresholds[1] or refined):
        findings.append(_benign.noise(leaf.name, difference, error_bar, rows.refined_steps))
    ok = rows.measured()
    if (
        ok.any()
        and not np.isin(rows.status, UNRESOLVED).any()
        and not np.any(rows.analytic[ok])
        and not np.any(rows.numeric[ok])
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
    if worst.steps and math.isfinite(order) and abs(order) < 0.5:
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
