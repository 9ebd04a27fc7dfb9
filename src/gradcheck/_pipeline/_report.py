"""Assemble the Report from the settled parameters: rows, findings and the overall verdict.

`build_report` is the end of every check that reached a verdict; `undetermined` the end
of one whose cost turned out random, which gives no verdict it cannot back.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._diagnose import (
    Circumstances,
    Rows,
    findings_for,
    held,
    overall_difference,
    param_report,
    precision,
    raised_steps,
    unresolved_range,
    whole_arrays,
)
from .._options import Options
from .._results import Finding, ParamReport, Report, Settings, Verdict, overall
from ._checked import Checked
from ._directional import unreached
from ._plan import Plan, pinned
from ._subject import Subject


def build_report(
    subject: Subject,
    options: Options,
    plan: Plan,
    checked: list[Checked],
    lead: list[Finding],
    settings: Settings,
    spent: dict[str, int],
    started: float,
) -> Report:
    """The report of a check: per-parameter rows, findings in order, the overall verdict."""
    circumstances = Circumstances(
        thresholds=options.thresholds, worst=options.worst, hints=options.hints,
        sigma=plan.sigma, eps=pinned(options),
        suggested={c.rows.leaf.name: _suggested(c.rows, plan) for c in checked},
        mode=options.mode,
    )  # fmt: skip
    params: list[ParamReport] = []
    mistakes: list[tuple[ParamReport, list[Finding]]] = []
    for c in checked:
        report = param_report(c.rows, c.judgement, options.worst, options.thresholds[1],
                              c.elements)  # fmt: skip
        params.append(report)
        refined = bool(c.rows.refined_steps)
        found = findings_for(c.rows, c.judgement, circumstances, c.elements, refined, c.stopped)
        for first, last in c.ranges or ():
            found.append(unresolved_range(c.rows.leaf.name, first, last - 1))
        # Within 10 % of the probability asked for is the same statement, not a shortfall.
        if c.miss > 1.1 * options.directional.miss_probability and c.rows.directions:
            found.append(unreached(c, options))
        mistakes.append((report, found))
    mistakes.sort(key=lambda pair: (pair[0].verdict.rank, pair[0].difference), reverse=True)
    findings = lead + [f for _, found in mistakes for f in found]
    bars = {p.name: p.error_bar for p in params}
    leaves = [c.rows.leaf for c in checked]
    note = precision(leaves, plan.sigma, plan.relative, settings.step, bars)
    if note is not None:
        findings.append(note)
    if plan.raised:
        findings.append(raised_steps(plan.raised, pinned(options)))
    if subject.held:
        findings.append(held(subject.held))
    if options.mode == "sample" and isinstance(options.samples, int):
        small = [(leaf.name, leaf.size) for leaf in leaves if 0 < leaf.size < options.samples]
        if small:
            findings.append(whole_arrays(options.samples, small))
    verdict, passed = overall(p.verdict for p in params)
    return Report(
        difference=overall_difference([c.rows for c in checked]),
        verdict=verdict,
        passed=passed,
        params={p.name: p for p in params},
        findings=findings,
        evaluations=sum(spent.values()),
        settings=settings,
        size=subject.flat.size,
        checked=sum(p.checked for p in params),
        spent=spent,
        elapsed=time.perf_counter() - started,
    )


def _suggested(rows: Rows, plan: Plan) -> float:
    """The central-difference step the measured noise calls for, for one parameter."""
    scale = float(np.median(plan.scales[rows.leaf_index])) if rows.leaf.size else 1.0
    gradient = rows.gradient_scale() or 1.0
    return float(scale * min(3 * plan.sigma / (gradient * scale), 1.0) ** (1 / 3))


def undetermined(subject: Subject, settings: Settings, findings: list[Finding],
                 started: float, *, spent: dict[str, int]) -> Report:  # fmt: skip
    """A report that gives no verdict it cannot back: the cost is random."""
    params = {
        leaf.name: ParamReport(
            name=leaf.name, shape=leaf.shape, dtype=str(leaf.dtype), size=leaf.size, checked=0,
            difference=math.nan, verdict=Verdict.INCONCLUSIVE, passed=False, worst=(),
            mismatches=0, norm_analytic=math.nan, norm_numeric=math.nan, nonfinite=0,
        )
        for leaf in subject.flat.leaves
    }  # fmt: skip
    verdict, passed = overall(p.verdict for p in params.values())
    return Report(
        difference=math.nan,
        verdict=verdict,
        passed=passed,
        params=params,
        findings=findings,
        evaluations=sum(spent.values()),
        settings=settings,
        size=subject.flat.size,
        checked=0,
        elapsed=time.perf_counter() - started,
        spent=spent,
    )
