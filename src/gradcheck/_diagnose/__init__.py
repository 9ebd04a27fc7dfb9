"""Diagnosis: say what a mismatch is, or why it is not one, and settle the verdicts.

After the comparison, three questions are asked, each with a few extra cost
evaluations placed only where they are needed:

1. How large is the finite-difference error? Every parameter gets an error bar
   from two coordinates re-evaluated at twice the step (four evaluations).
2. For each parameter that failed: is the mismatch real? Its worst elements are
   re-evaluated on a ladder of steps ``h * 4**j``. A jump between the one-sided
   slopes that stays put as the step shrinks is a kink (the element is left out
   of the verdict if the analytic value is a valid one-sided slope); an error that
   shrinks with the step was round-off or truncation (the refined estimate
   replaces it); an error that stays put is a real mismatch.
3. What kind of mistake? Parameters that still fail are matched against the
   catalogue of patterns (`_mistakes`).

A parameter whose remaining mismatch lies within its error bar, with no element
confirmed wrong, is called noise and passes as acceptable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._compare import Comparison, ParamReport, Verdict, compare, elements_off
from .._engine import SCHEMES, NumericGradient, Problem, precision_of, probe_steps
from .._engine._schemes import requested_steps
from .._tree import FlatParams, Leaf
from . import _benign
from ._finding import KINDS, Finding
from ._mistakes import ParamData, explain
from ._steps import LADDER, RATIO, StepAnalysis, analyze

__all__ = ["KINDS", "Diagnosis", "Evidence", "Finding", "diagnose"]

BATCH = 16
"""Failing elements re-evaluated on the step ladder at a time."""
MAX_REFINED = 64
"""At most this many elements per parameter are re-evaluated on the ladder."""
ERROR_BAR_SAMPLES = 2
"""Coordinates per passing parameter re-evaluated at twice the step for its error bar."""
NOISE_FACTOR = 3.0
"""A mismatch within this many error bars is noise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """What the earlier stages produced, and how to evaluate the cost again."""

    problem: Problem
    numeric: NumericGradient
    analytic: NDArray[np.float64]
    flat: FlatParams
    comparison: Comparison
    worst: int
    seed: int
    cost_dtype: np.dtype[Any] | None
    complex_step: bool
    """The check used the complex step: its steps are imaginary, no use for real probes."""
    step: str
    """The step in words, for the precision finding."""
    hints: Mapping[str, int]
    """Known sizes to name scale factors: "batch_size", "time_steps"."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnosis:
    """The settled comparison and the findings, most important first."""

    comparison: Comparison
    findings: list[Finding]
    evaluations: int
    """Extra cost evaluations the diagnosis spent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Kink:
    """An element where the step crosses a kink of the cost."""

    local: int
    analytic: float
    left: float
    right: float
    within: bool
    """The analytic value lies between the one-sided slopes."""


@dataclass(slots=True)
class _Leaf:
    """Working state for one parameter during diagnosis."""

    leaf: Leaf
    rows: slice
    error_bar: float = math.nan
    error_norm: float = 0.0
    refined: int = 0
    kinks: list[_Kink] | None = None
    confirmed: StepAnalysis | None = None
    confirmed_at: NDArray[np.intp] | None = None
    steps: NDArray[np.float64] | None = None


def diagnose(evidence: Evidence) -> Diagnosis:
    """Estimate error bars, test failing elements for kinks and convergence, explain mistakes."""
    ev = evidence
    indices = ev.numeric.indices
    numeric = ev.numeric.values.copy()
    analytic = ev.analytic[indices]
    excluded = np.zeros(len(indices), dtype=bool)
    rng = np.random.default_rng(ev.seed)
    evaluations = 0
    states = []
    for leaf, param in zip(ev.flat.leaves, ev.comparison.params, strict=True):
        lo, hi = np.searchsorted(indices, [leaf.offset, leaf.offset + leaf.size])
        state = _Leaf(leaf=leaf, rows=slice(int(lo), int(hi)))
        states.append(state)
        if hi == lo:
            continue
        resolution = precision_of(leaf.dtype, ev.cost_dtype)
        if param.passed:
            evaluations += _error_bar_only(ev, state, numeric, rng)
        else:
            evaluations += _refine(ev, state, numeric, analytic, excluded, resolution)
        _finish_error_bar(ev, state, numeric, analytic, resolution)

    final = compare(indices, numeric, ev.analytic, ev.flat, ev.comparison.thresholds, ev.worst,
                    excluded)  # fmt: skip
    settled, findings = _settle(ev, final, states, numeric, analytic)
    return Diagnosis(comparison=settled, findings=findings, evaluations=evaluations)


def _error_bar_only(
    ev: Evidence, state: _Leaf, numeric: NDArray[np.float64], rng: np.random.Generator
) -> int:
    """Re-evaluate two coordinates at twice the step: their change estimates the FD error."""
    rows = np.arange(state.rows.start, state.rows.stop)
    rows = rows[np.isfinite(numeric[rows])]
    if not len(rows):
        return 0
    pick = np.sort(rng.choice(rows, size=min(ERROR_BAR_SAMPLES, len(rows)), replace=False))
    steps = 2 * _probe_steps(ev, state.leaf, pick)
    probe = probe_steps(ev.problem, ev.numeric.indices[pick], steps[:, None])
    doubled = (probe.plus[:, 0] - probe.minus[:, 0]) / (probe.up[:, 0] + probe.down[:, 0])
    state.error_norm = float(np.sqrt(np.mean((numeric[pick] - doubled) ** 2)))
    return probe.evaluations


def _refine(
    ev: Evidence,
    state: _Leaf,
    numeric: NDArray[np.float64],
    analytic: NDArray[np.float64],
    excluded: NDArray[np.bool_],
    resolution: float,
) -> int:
    """Re-evaluate the worst elements of a failing parameter on the step ladder."""
    rows = np.arange(state.rows.start, state.rows.stop)
    finite = np.isfinite(numeric[rows]) & np.isfinite(analytic[rows])
    rows = rows[finite]
    off = elements_off(analytic[rows], numeric[rows], ev.comparison.thresholds[1])
    candidates = rows[off] if off.any() else rows
    candidates = candidates[np.argsort(-np.abs(analytic[candidates] - numeric[candidates]))]
    candidates = candidates[:MAX_REFINED]
    base = float(np.real(ev.problem.base_value))
    evaluations = 0
    errors = []
    state.kinks = []
    for start in range(0, len(candidates), BATCH):
        batch = candidates[start : start + BATCH]
        steps = _probe_steps(ev, state.leaf, batch)[:, None] * RATIO ** np.array(
            LADDER, dtype=float
        )
        probe = probe_steps(ev.problem, ev.numeric.indices[batch], steps)
        evaluations += probe.evaluations
        result = analyze(probe.plus, probe.minus, probe.up, probe.down, base, analytic[batch],
                         resolution)  # fmt: skip
        state.refined += len(batch)
        kink = result.kink  # left out of the verdict, listed in a finding
        gap = np.abs(analytic[batch] - result.refined)
        tolerance = np.maximum(
            NOISE_FACTOR * result.uncertainty,
            ev.comparison.thresholds[1] * (np.abs(analytic[batch]) + np.abs(result.refined)),
        )
        agrees = ~kink & (gap <= tolerance)
        errors.extend(np.abs(numeric[batch] - result.refined)[~kink].tolist())
        excluded[batch[kink]] = True
        for row, left, right, within in zip(
            batch[kink], result.left[kink], result.right[kink], result.within[kink], strict=True
        ):
            local = int(ev.numeric.indices[row]) - state.leaf.offset
            state.kinks.append(
                _Kink(local=local, analytic=float(analytic[row]), left=float(left),
                      right=float(right), within=bool(within))
            )  # fmt: skip
        numeric[batch[agrees]] = result.refined[agrees]
        wrong = ~kink & ~agrees
        if wrong.any():
            state.confirmed = _pick(result, wrong)
            state.confirmed_at = batch[wrong]
            state.steps = steps[wrong]
            break
    if errors:
        state.error_norm = float(np.sqrt(np.mean(np.square(errors))))
    return evaluations


def _probe_steps(ev: Evidence, leaf: Leaf, rows: NDArray[np.intp]) -> NDArray[np.float64]:
    """The real step each probed coordinate starts from.

    That is the check's own step, or for the complex step (whose tiny imaginary steps
    mean nothing to a real difference) the central-difference default.
    """
    if not ev.complex_step:
        return ev.numeric.steps[rows]
    local = ev.numeric.indices[rows] - leaf.offset
    x = np.asarray(leaf.array, dtype=np.float64).reshape(-1)[local]
    resolution = precision_of(leaf.dtype, ev.cost_dtype)
    return requested_steps(SCHEMES["central"], x, None, resolution)


def _pick(result: StepAnalysis, mask: NDArray[np.bool_]) -> StepAnalysis:
    return StepAnalysis(**{name: getattr(result, name)[mask] for name in StepAnalysis.__slots__})


def _finish_error_bar(
    ev: Evidence,
    state: _Leaf,
    numeric: NDArray[np.float64],
    analytic: NDArray[np.float64],
    resolution: float,
) -> None:
    """Turn the per-element FD error into the difference it alone would produce."""
    rows = slice(state.rows.start, state.rows.stop)
    ok = np.isfinite(numeric[rows]) & np.isfinite(analytic[rows])
    if not ok.any():
        return
    base = abs(float(np.real(ev.problem.base_value)))
    all_rows = np.arange(state.rows.start, state.rows.stop)[ok]
    roundoff = resolution * base / float(np.median(_probe_steps(ev, state.leaf, all_rows)))
    per_element = max(state.error_norm, roundoff)
    state.error_norm = per_element * math.sqrt(int(ok.sum()))
    denominator = float(np.linalg.norm(numeric[rows][ok]) + np.linalg.norm(analytic[rows][ok]))
    state.error_bar = state.error_norm / denominator if denominator else 0.0


def _settle(
    ev: Evidence,
    final: Comparison,
    states: list[_Leaf],
    numeric: NDArray[np.float64],
    analytic: NDArray[np.float64],
) -> tuple[Comparison, list[Finding]]:
    """Apply error bars and noise verdicts, then explain what still fails."""
    params: list[ParamReport] = []
    noise_findings, kink_findings, unused_findings = [], [], []
    for state, param in zip(states, final.params, strict=True):
        param = replace(param, error_bar=state.error_bar)
        if (
            not param.passed
            and param.nonfinite == 0
            and state.confirmed is None
            and param.difference <= NOISE_FACTOR * state.error_bar
        ):
            noise_findings.append(
                _benign.noise(param.name, param.difference, state.error_bar, state.refined)
            )
            param = replace(param, verdict=Verdict.ACCEPTABLE, passed=True)
        if state.kinks:
            kink_findings.append(
                _benign.kinks(state.leaf, state.kinks, everything=param.checked == param.excluded)
            )
        if param.checked > param.excluded + param.nonfinite and not (
            param.norm_analytic or param.norm_numeric
        ):
            unused_findings.append(_benign.unused(param.name))
        params.append(param)

    verdict = final.verdict
    total = math.sqrt(sum(s.error_norm**2 for s in states))
    ok = np.isfinite(numeric) & np.isfinite(analytic)
    norms = float(np.linalg.norm(numeric[ok]) + np.linalg.norm(analytic[ok]))
    within_noise = norms > 0 and final.difference <= NOISE_FACTOR * total / norms
    if not verdict.passes and all(p.passed for p in params) and within_noise:
        verdict = Verdict.ACCEPTABLE
    settled = replace(final, params=tuple(params), verdict=verdict)

    mistakes = [
        _explain(ev, state, param, numeric, analytic)
        for state, param in sorted(
            zip(states, params, strict=True),
            key=lambda pair: (pair[1].verdict.rank, pair[1].difference),
            reverse=True,
        )
        if not param.verdict.passes and param.checked > param.nonfinite + param.excluded
    ]
    findings = [*mistakes]
    findings += _benign.nonfinite(ev.numeric.nonfinite, "numeric", ev.flat)
    bad_analytic = ev.numeric.indices[~np.isfinite(ev.analytic[ev.numeric.indices])]
    findings += _benign.nonfinite(bad_analytic, "analytic", ev.flat)
    findings += kink_findings + noise_findings + unused_findings
    precision = _benign.precision(
        ev.flat, ev.cost_dtype, ev.step, {p.name: p.error_bar for p in params}
    )
    if precision is not None:
        findings.append(precision)
    if ev.numeric.raised_steps:
        findings.append(_benign.raised_steps(ev.numeric.raised_steps))
    return settled, findings


def _explain(
    ev: Evidence,
    state: _Leaf,
    param: ParamReport,
    numeric: NDArray[np.float64],
    analytic: NDArray[np.float64],
) -> Finding:
    rows = np.arange(state.rows.start, state.rows.stop)
    kinks = {kink.local for kink in state.kinks or ()}
    local = ev.numeric.indices[rows] - state.leaf.offset
    usable = np.isfinite(numeric[rows]) & np.isfinite(analytic[rows])
    usable &= ~np.isin(local, list(kinks))
    rows, local = rows[usable], local[usable]
    theta = np.asarray(state.leaf.array, dtype=np.float64).reshape(-1)[local]
    magnitude = np.abs(analytic[rows]) + np.abs(numeric[rows])
    data = ParamData(
        name=param.name,
        shape=param.shape,
        local=local,
        analytic=analytic[rows],
        numeric=numeric[rows],
        theta=theta,
        scale=float(np.sqrt(np.mean(magnitude**2))) if len(rows) else 0.0,
        tolerance=ev.comparison.thresholds[1],
    )
    finding = explain(data, ev.hints)
    if state.confirmed is None or state.confirmed_at is None or state.steps is None:
        return finding
    worst = int(np.argmax(state.confirmed.errors[:, -1]))
    order = float(state.confirmed.order[worst])
    order = 0.0 if abs(order) < 0.05 else order  # no "-0.0" in messages
    index = state.leaf.index_of(
        int(ev.numeric.indices[state.confirmed_at[worst]]) - state.leaf.offset
    )
    convergence = {
        "index": list(index),
        "steps": state.steps[worst].tolist(),
        "errors": state.confirmed.errors[worst].tolist(),
        "order": order,
        "refined": float(state.confirmed.refined[worst]),
    }
    steps = state.steps[worst]
    message = finding.message.rstrip(".") + (
        f" (the error stays put from step {steps.min():.0e} to {steps.max():.0e}, observed "
        f"order {order:.1f}: not round-off)."
    )
    return replace(finding, message=message, detail={**finding.detail, "convergence": convergence})
