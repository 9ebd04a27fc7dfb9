"""Run the stages of a check in order: engine, compare, diagnose, report."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._compare import Verdict, compare
from ._diagnose import Evidence, Finding, diagnose
from ._diagnose._benign import nondeterministic
from ._engine import Plan, Problem, estimate, precision_of
from ._engine._schemes import describe_step
from ._errors import CostFunctionError
from ._options import Options
from ._report import Report, Settings
from ._scalar import to_scalar
from ._tree import FlatParams, ParamTree, tree_arrays

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
    second, grads_changed = subject.repeat()
    randomness = nondeterministic(subject.base_value, second, grads_changed)
    if randomness is not None and _ruins_check(subject, options, second):
        return _undetermined(subject, options, settings, randomness, started)

    problem = _problem(subject, complex_step=scheme.complex_step)
    plan = Plan(scheme=scheme, mode=options.mode, eps=options.eps, samples=options.samples,
                seed=options.seed, cost_dtype=subject.cost_dtype)  # fmt: skip
    numeric = estimate(problem, plan)
    comparison = compare(numeric.indices, numeric.values, subject.analytic, subject.flat,
                         options.thresholds, options.worst)  # fmt: skip
    diagnosis = diagnose(
        Evidence(problem=problem, numeric=numeric, analytic=subject.analytic, flat=subject.flat,
                 comparison=comparison, worst=options.worst, seed=options.seed,
                 cost_dtype=subject.cost_dtype, complex_step=scheme.complex_step,
                 step=settings.step, hints=options.hints)
    )  # fmt: skip
    final = diagnosis.comparison
    findings = ([randomness] if randomness else []) + diagnosis.findings
    return Report(
        difference=final.difference,
        verdict=final.verdict,
        passed=final.verdict.passes and all(p.passed for p in final.params),
        params={p.name: p for p in final.params},
        findings=findings,
        evaluations=(3 if scheme.complex_step else 2) + numeric.evaluations + diagnosis.evaluations,
        settings=settings,
        size=subject.flat.size,
        checked=final.checked,
        elapsed=time.perf_counter() - started,
    )


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

    return Problem(cost=cost, flat=flat, base_value=subject.base_value)


def _describe_steps(flat: FlatParams, options: Options, cost_dtype: np.dtype[Any] | None) -> str:
    described: dict[str, list[str]] = {}
    for leaf in flat:
        resolution = precision_of(leaf.dtype, cost_dtype)
        text = describe_step(options.scheme, options.eps, resolution)
        described.setdefault(text, []).append(str(leaf.dtype))
    if len(described) == 1:
        return next(iter(described))
    return ", ".join(f"{text} ({'/'.join(sorted(set(d)))})" for text, d in described.items())
