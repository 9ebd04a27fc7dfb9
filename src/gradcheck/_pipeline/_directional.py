"""Directional and bisect mode: k random directions per tensor, then bisection.

Each tensor is checked along k random directions (k from the miss probability asked for);
a tensor that fails in bisect mode is halved down to its wrong elements, which are
settled like coordinates. What the directions could not promise for a tensor (the noise
forced a larger allowance) becomes a finding (`unreached`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._compare import CONFIDENCE, judge
from .._diagnose import Context, Rows, Status, reach, settle
from .._engine import (
    DirectionFailedError,
    bisect,
    directions_for,
    estimate,
    miss_probability,
    project,
)
from .._errors import CostFunctionError
from .._options import Options
from .._results import Finding, Settings, Verdict
from ._checked import Checked, estimate_status
from ._plan import Plan, context
from ._subject import Subject


def check_directions(
    subject: Subject, options: Options, plan: Plan
) -> tuple[list[Checked], int, int, Settings]:
    """Directional and bisect mode: k random directions per tensor, then bisection.

    Raises:
        CostFunctionError: the cost raised with a direction applied (arrays restored).
    """
    try:
        return _directions(subject, options, plan)
    except DirectionFailedError as failure:
        leaf, cause = failure.leaf, failure.__cause__
        if failure.hi - failure.lo == 1:
            where = leaf.describe_element(leaf.index_of(failure.lo))
        else:
            span = f"{failure.lo}..{failure.hi - 1}"
            where = f"a random direction over elements {span} of {leaf.describe()}"
        raise CostFunctionError(
            f"the cost function raised {type(cause).__name__}: {cause} while {where} was "
            "perturbed. Your arrays have been restored.",
            param=leaf.name,
        ) from cause


def _directions(
    subject: Subject, options: Options, plan: Plan
) -> tuple[list[Checked], int, int, Settings]:
    problem = plan.problem
    tolerance = options.thresholds[1]
    promise = options.directional
    k = promise.directions or directions_for(promise.miss_probability, tolerance,
                                             promise.detectable)  # fmt: skip
    settling = context(subject, options, plan, None)
    checked, bulk, follow_up = [], 0, 0
    worst_miss = 0.0
    for leaf_index, leaf in enumerate(problem.flat.leaves):
        part = subject.analytic[leaf.offset : leaf.offset + leaf.size]
        h = plan.steps[leaf_index]
        if leaf.size == 0:
            continue
        rng = np.random.default_rng([options.seed, leaf_index])
        sigma = settling.noise_along(leaf_index, leaf.size)
        measured = project(problem, leaf_index, 0, leaf.size, h, part, sigma, rng, k)
        bulk += 2 * k
        leaf_rows = _direction_rows(leaf_index, leaf, measured, part)
        outcome = settle(settling, leaf_rows)
        follow_up += outcome.evaluations
        entry = Checked(rows=leaf_rows, judgement=outcome.judgement)
        if options.mode == "bisect" and entry.judgement.verdict in (Verdict.SUSPICIOUS,
                                                                     Verdict.BUG):  # fmt: skip
            follow_up += _bisect(subject, options, plan, settling, entry)
        entry.miss = _miss(leaf_rows, k, options)
        checked.append(entry)
        worst_miss = max(worst_miss, entry.miss)
    settings = replace(plan.settings, directions=k, detectable=options.directional.detectable,
                       miss_probability=max(worst_miss, miss_probability(
                           k, tolerance, options.directional.detectable)))  # fmt: skip
    return checked, bulk, follow_up, settings


def _direction_rows(leaf_index: int, leaf: Any, measured: list[Any],
                    part: NDArray[np.float64]) -> Rows:  # fmt: skip
    status = [Status.NO_STEP if not d.usable else Status.NONFINITE if d.nonfinite
              else Status.FLAT if d.flat and abs(d.analytic) > CONFIDENCE * d.noise
              else Status.MEASURED for d in measured]  # fmt: skip
    return Rows(leaf=leaf, leaf_index=leaf_index, local=np.arange(len(measured)),
                analytic=np.array([d.analytic for d in measured]),
                numeric=np.array([d.numeric for d in measured]),
                error=np.array([d.noise for d in measured]), step=np.ones(len(measured)),
                status=np.array(status, dtype=np.int8), directions=measured,
                leaf_analytic=part)  # fmt: skip


def _miss(rows: Rows, k: int, options: Options) -> float:
    """The miss probability the noise actually reached allows for this tensor."""
    if rows.directions is None or not rows.directions:
        return 0.0
    norm = max(d.scale for d in rows.directions)
    if norm == 0:
        return 0.0
    allowance = CONFIDENCE * float(np.max(rows.error)) / norm
    return miss_probability(
        k, options.thresholds[1], options.directional.detectable, noise=allowance
    )


def unreached(checked: Checked, options: Options) -> Finding:
    """The stated miss probability could not be reached for this tensor: say for what size."""
    rows = checked.rows
    assert rows.directions is not None
    k = len(rows.directions)
    norm = max(d.scale for d in rows.directions)
    allowance = CONFIDENCE * float(np.max(rows.error)) / norm if norm else math.inf
    low, high = options.directional.detectable, 1e6
    for _ in range(60):  # the size of error caught with the requested probability
        middle = math.sqrt(low * high)
        missed = miss_probability(k, options.thresholds[1], middle, noise=allowance)
        low, high = (
            (middle, high) if missed > options.directional.miss_probability else (low, middle)
        )
    promise = options.directional
    return reach(rows.leaf.name, k, checked.miss, promise.detectable, promise.miss_probability,
                 high)  # fmt: skip


def _bisect(subject: Subject, options: Options, plan: Plan, settling: Context,
            entry: Checked) -> int:  # fmt: skip
    """Halve a failing tensor down to its wrong elements; settle those elements.

    Returns the evaluations spent; the elements and the settled judgement go into ``entry``.
    """
    problem = plan.problem
    leaf_index = entry.rows.leaf_index
    leaf = problem.flat.leaves[leaf_index]
    part = subject.analytic[leaf.offset : leaf.offset + leaf.size]
    h = plan.steps[leaf_index]
    found: list[Rows] = []
    spent = 0

    def measure_range(lo: int, hi: int, count: int, attempt: int) -> list[Any]:
        nonlocal spent
        rng = np.random.default_rng([options.seed, leaf_index, lo, hi, attempt])
        spent += 2 * count
        sigma = settling.noise_along(leaf_index, hi - lo)
        return project(problem, leaf_index, lo, hi, h[lo:hi], part[lo:hi], sigma, rng, count)

    def fails(direction: Any) -> bool:
        rows = _direction_rows(leaf_index, leaf, [direction], part)
        difference, error_bar = rows.difference()
        return bool(difference >= options.thresholds[1]
                    and difference > CONFIDENCE * error_bar)  # fmt: skip

    def check_range(lo: int, hi: int) -> int:
        nonlocal spent
        chosen = [np.arange(lo, hi) if i == leaf_index else np.empty(0, dtype=np.intp)
                  for i in range(len(problem.flat.leaves))]  # fmt: skip
        steps = [h[c] if i == leaf_index else np.empty(0) for i, c in enumerate(chosen)]
        estimates = estimate(problem, options.scheme, chosen, steps, plan.sigmas)
        spent += estimates.evaluations
        expected = np.abs(part[lo:hi]) * 2 * estimates.steps
        flat = estimates.flat & (expected > CONFIDENCE * plan.sigmas[leaf_index])
        codes = estimate_status(estimates.usable, estimates.nonfinite, flat)
        rows = Rows(leaf=leaf, leaf_index=leaf_index, local=np.arange(lo, hi),
                    analytic=part[lo:hi].copy(), numeric=estimates.values.copy(),
                    error=estimates.noise.copy(), step=estimates.steps.copy(),
                    status=codes.astype(np.int8))  # fmt: skip
        found.append(rows)
        return int(np.count_nonzero(rows.off(options.thresholds[1])))

    bisection = bisect(leaf.size, measure_range, fails, check_range)
    elements = _concatenate(leaf, leaf_index, found)
    if len(elements.local):
        spent += settle(settling, elements).evaluations
    rows = entry.rows
    difference, error_bar = rows.difference()
    confirmed = bool(rows.confirmed.any() or elements.confirmed.any())
    entry.judgement = judge(difference, error_bar, thresholds=options.thresholds,
                            unresolved=rows.unresolved_reason(), confirmed=confirmed)  # fmt: skip
    entry.elements, entry.stopped, entry.ranges = elements, bisection.stopped, bisection.unresolved
    return spent


def _concatenate(leaf: Any, leaf_index: int, parts: Sequence[Rows]) -> Rows:
    def join(name: str) -> NDArray[Any]:
        return np.concatenate([getattr(p, name) for p in parts]) if parts else np.empty(0)

    order = np.argsort(join("local"), kind="stable") if parts else np.empty(0, dtype=np.intp)
    return Rows(leaf=leaf, leaf_index=leaf_index, local=join("local").astype(np.intp)[order],
                analytic=join("analytic")[order], numeric=join("numeric")[order],
                error=join("error")[order], step=join("step")[order],
                status=join("status").astype(np.int8)[order])  # fmt: skip
