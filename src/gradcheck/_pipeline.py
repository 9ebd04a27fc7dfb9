"""Run the stages of a check in order: engine, compare, diagnose, report."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._compare import Comparison, Verdict, compare, compare_directional
from ._diagnose import Evidence, Finding, diagnose
from ._diagnose._benign import nondeterministic
from ._diagnose._directional import diagnose_directional
from ._engine import (
    BatchedExecutor,
    Plan,
    PoolExecutor,
    Problem,
    directions_for,
    estimate,
    estimate_directional,
    miss_probability,
    precision_of,
    resolution_of,
)
from ._engine._modes import samples_per_leaf
from ._engine._schemes import describe_step
from ._errors import CostFunctionError, GradcheckWarning
from ._evaluation import executor_for
from ._options import Options
from ._progress import ProgressBar
from ._report import Report, Settings
from ._scalar import to_scalar
from ._tree import FlatParams, ParamTree, tree_arrays

LONG_CHECK = 2_000_000
"""Planned evaluations above which a full check warns with its estimated duration."""

_MSG_DROPS_IMAGINARY = (
    "method='complex' evaluates the cost at complex parameters and reads the derivative "
    "from the imaginary part, but the cost returned a real number there: something in it "
    "drops the imaginary part (float(), np.real, abs, np.maximum, comparisons). Make those "
    "steps complex-safe, or use method='central'."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject:
    """What a check is about: a cost of the parameter tree and the gradient to verify."""

    evaluate: Callable[[Any], Any]
    """Cost of a parameter tree (the user's, or a complex copy of it for the complex step)."""
    params: ParamTree
    flat: FlatParams
    """The leaves to check (all of params', or those the user gave gradients for)."""
    analytic: NDArray[np.float64]
    base_value: float
    cost_dtype: np.dtype[Any] | None
    """The precision of the cost, from the type it returns (None for a Python float)."""
    repeat: Callable[[], tuple[float, bool]]
    """Evaluate again at the base point: (cost, whether the analytic gradient changed)."""


def run(subject: Subject, options: Options, started: float) -> Report:
    """Estimate, compare and diagnose; return the Report."""
    scheme = options.scheme
    settings = Settings(
        method=scheme.name,
        eps=options.eps,
        step=_describe_steps(subject.flat, options, subject.cost_dtype),
        mode=options.mode,
        samples=options.samples,
        seed=options.seed,
        thresholds=options.thresholds,
    )
    timer = time.perf_counter()
    second, grads_changed = subject.repeat()
    one_evaluation = time.perf_counter() - timer
    randomness = nondeterministic(subject.base_value, second, grads_changed)
    if randomness is not None and _ruins_check(subject, options, second):
        return _undetermined(subject, options, settings, randomness, started)
    lead = [randomness] if randomness else []
    problem = _problem(subject, complex_step=scheme.complex_step)
    if options.mode in ("directional", "bisect"):
        return _run_directional(subject, options, problem, settings, lead, started)

    plan = Plan(scheme=scheme, mode=options.mode, eps=options.eps, samples=options.samples,
                seed=options.seed, cost_dtype=subject.cost_dtype)  # fmt: skip
    planned = _planned_evaluations(subject.flat, options)
    _warn_if_long(options, planned, one_evaluation)
    with (
        ProgressBar(planned, "gradcheck", enabled=options.progress) as progress,
        executor_for(
            problem,
            problem.target,
            subject.evaluate,
            options,
            progress,
            resolution_of(subject.cost_dtype or np.dtype(np.float64)),
        ) as executor,
    ):
        numeric = estimate(problem, plan, executor)
    comparison = compare(numeric.indices, numeric.values, subject.analytic, subject.flat,
                         options.thresholds, options.worst)  # fmt: skip
    diagnosis = diagnose(
        Evidence(problem=problem, numeric=numeric, analytic=subject.analytic, flat=subject.flat,
                 comparison=comparison, worst=options.worst, seed=options.seed,
                 cost_dtype=subject.cost_dtype, complex_step=scheme.complex_step,
                 step=settings.step, hints=options.hints)
    )  # fmt: skip
    if isinstance(executor, BatchedExecutor):
        sizes = sorted(set(executor.choices.values()))
        settings = replace(settings, executor="batched (B=" + "/".join(map(str, sizes)) + ")")
    elif isinstance(executor, PoolExecutor):
        settings = replace(settings, executor=f"{executor.workers} workers")
    return _report(
        diagnosis.comparison,
        lead + diagnosis.findings,
        (3 if scheme.complex_step else 2) + numeric.evaluations + diagnosis.evaluations,
        settings,
        subject.flat,
        started,
    )


def _run_directional(
    subject: Subject,
    options: Options,
    problem: Problem,
    settings: Settings,
    lead: list[Finding],
    started: float,
) -> Report:
    """The directional modes: k random directions per tensor, bisection into failures."""
    tolerance = options.thresholds[1]
    directions = options.directions or directions_for(
        options.miss_probability, tolerance, options.detectable
    )
    result = estimate_directional(
        problem,
        subject.analytic,
        eps=options.eps,
        cost_dtype=subject.cost_dtype,
        directions=directions,
        tolerance=tolerance,
        bisect=options.mode == "bisect",
        seed=options.seed,
    )
    comparison = compare_directional(result, subject.analytic, subject.flat,
                                     options.thresholds, options.worst)  # fmt: skip
    findings = diagnose_directional(comparison, result, options.hints, tolerance)
    settings = replace(
        settings,
        directions=directions,
        miss_probability=miss_probability(directions, tolerance, options.detectable),
        detectable=options.detectable,
    )
    return _report(comparison, lead + findings, 2 + result.evaluations, settings, subject.flat,
                   started)  # fmt: skip


def _report(
    comparison: Comparison,
    findings: list[Finding],
    evaluations: int,
    settings: Settings,
    flat: FlatParams,
    started: float,
) -> Report:
    return Report(
        difference=comparison.difference,
        verdict=comparison.verdict,
        passed=comparison.verdict.passes and all(p.passed for p in comparison.params),
        params={p.name: p for p in comparison.params},
        findings=findings,
        evaluations=evaluations,
        settings=settings,
        size=flat.size,
        checked=comparison.checked,
        elapsed=time.perf_counter() - started,
    )


def _planned_evaluations(flat: FlatParams, options: Options) -> int:
    if options.mode == "full":
        coordinates = flat.size
    else:
        coordinates = sum(samples_per_leaf(leaf.size, options.samples) for leaf in flat)
    return coordinates * options.scheme.evaluations_per_coordinate


def _warn_if_long(options: Options, planned: int, one_evaluation: float) -> None:
    """Before a full check of over a million evaluations, say how long it will take."""
    if options.mode != "full" or planned < LONG_CHECK:
        return
    workers = options.workers or 1
    seconds = planned * one_evaluation / workers
    warnings.warn(
        f"a full check is {planned:,} cost evaluations: about {_duration(seconds)} at "
        f"{one_evaluation * 1e3:.2g} ms each. mode='directional' detects a wrong tensor in a "
        "few dozen evaluations, mode='bisect' also finds the wrong elements, and "
        "mode='sample' checks a seeded sample of each tensor.",
        GradcheckWarning,
        stacklevel=4,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _ruins_check(subject: Subject, options: Options, second: float) -> bool:
    """Whether the randomness between two evaluations would swamp a finite difference.

    A gap g between evaluations puts up to g / 2h into each numeric partial derivative;
    over n coordinates that is a difference of about sqrt(n) g / 2h against the gradient's
    norm. Below the "correct" threshold the check can go on.
    """
    if not math.isfinite(second):
        return True
    gap = abs(second - subject.base_value)
    if gap == 0:
        return True  # only the gradients changed: the analytic side cannot be trusted
    step = 1e-7 if options.eps is None or options.eps == "auto" else float(options.eps)
    induced = math.sqrt(subject.flat.size) * gap / (2 * step)
    norm = float(np.linalg.norm(subject.analytic[np.isfinite(subject.analytic)]))
    return induced >= options.thresholds[0] * norm


def _undetermined(
    subject: Subject, options: Options, settings: Settings, finding: Finding, started: float
) -> Report:
    """A report that gives no verdict it cannot back: nothing was compared."""
    empty = compare(np.empty(0, dtype=np.intp), np.empty(0), subject.analytic, subject.flat,
                    options.thresholds, options.worst)  # fmt: skip
    params = {
        p.name: replace(p, difference=math.nan, verdict=Verdict.SUSPICIOUS, passed=False)
        for p in empty.params
    }
    return Report(
        difference=math.nan,
        verdict=Verdict.SUSPICIOUS,
        passed=False,
        params=params,
        findings=[finding],
        evaluations=2,
        settings=settings,
        size=subject.flat.size,
        checked=0,
        elapsed=time.perf_counter() - started,
    )


def _problem(subject: Subject, *, complex_step: bool) -> Problem:
    """The zero-argument cost the engine evaluates after each in-place perturbation."""
    flat, target = subject.flat, subject.params
    if complex_step:
        # The user's float arrays cannot hold x + ih: perturb complex copies of them instead.
        checked = {id(leaf.array) for leaf in flat}
        arrays = tree_arrays(target)
        copies = [a.astype(np.result_type(a.dtype, np.complex64)) if id(a) in checked else a
                  for a in arrays]  # fmt: skip
        target = flat.unflatten(copies)
        by_id = {id(a): c for a, c in zip(arrays, copies, strict=True)}
        flat = replace(flat, leaves=tuple(replace(leaf, array=by_id[id(leaf.array)])
                                          for leaf in flat))  # fmt: skip
        if not np.iscomplexobj(subject.evaluate(target)):
            raise CostFunctionError(_MSG_DROPS_IMAGINARY)
    evaluate = subject.evaluate

    def cost() -> float | complex:
        value: float | complex = to_scalar(evaluate(target))
        return value

    return Problem(cost=cost, flat=flat, base_value=subject.base_value, target=target)


def _describe_steps(flat: FlatParams, options: Options, cost_dtype: np.dtype[Any] | None) -> str:
    described: dict[str, list[str]] = {}
    for leaf in flat:
        resolution = precision_of(leaf.dtype, cost_dtype)
        text = describe_step(options.scheme, options.eps, resolution)
        described.setdefault(text, []).append(str(leaf.dtype))
    if len(described) == 1:
        return next(iter(described))
    return ", ".join(f"{text} ({'/'.join(sorted(set(d)))})" for text, d in described.items())
