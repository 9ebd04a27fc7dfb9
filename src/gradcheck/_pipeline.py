"""Run the stages of a check in order, the same for every mode: estimate, settle, report.

1. The cost is evaluated twice at the given point (randomness) and its noise is measured.
2. The bulk estimate: every chosen coordinate (full, sample) or k random directions per
   tensor (directional, bisect), at steps chosen from the parameters' precision and
   magnitude and the measured noise; each row gets its error bar.
3. Each parameter's verdict is settled on evidence (`_diagnose.settle`); in bisect mode the
   failing tensors are then halved down to their wrong elements, which are settled too.
4. The cost at the given point once more (randomness that started late), then the report:
   per-parameter rows, findings, and the overall verdict from `_compare.overall`.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._compare import CONFIDENCE, Judgement, judge
from ._diagnose import (
    Circumstances,
    Context,
    Rows,
    Status,
    changed_during,
    findings_for,
    held,
    nondeterministic,
    overall_difference,
    param_report,
    precision,
    raised_steps,
    reach,
    settle,
    unresolved_range,
    whole_arrays,
)
from ._engine import (
    BatchedExecutor,
    DirectionFailedError,
    Estimates,
    Executor,
    PoolExecutor,
    Problem,
    bisect,
    describe,
    directions_for,
    estimate,
    initial_steps,
    measure,
    measure_along_directions,
    miss_probability,
    project,
    scale_of,
    select_coordinates,
)
from ._errors import CostFunctionError, GradcheckWarning
from ._evaluation import executor_for
from ._norms import stable_norm
from ._options import Options
from ._progress import ProgressBar
from ._results import Finding, ParamReport, Report, Settings, Verdict, overall
from ._scalar import to_scalar
from ._timeout import limited
from ._tree import FlatParams, ParamTree, tree_arrays

LONG_CHECK = 2_000_000
"""Planned evaluations above which a full check warns with its estimated duration."""
COMPLEX_STEP = 1e-20
"""The complex step's default: no subtraction, so any tiny step is exact."""

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
    repeat: Callable[[], tuple[float, bool]]
    """Evaluate again at the base point: (cost, whether the analytic gradient changed)."""
    recompute: Callable[[], NDArray[np.float64]] | None = None
    """The analytic gradient over theta at the arrays' current values (None: not available,
    the user passed the gradient itself)."""
    held: tuple[tuple[str, str], ...] = ()
    """(name, dtype) of inputs that are not floating point: held fixed, not checked."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    """The steps and noise a check runs with, decided before the bulk estimate."""

    problem: Problem
    sigma: float
    """The cost's measured noise along a coordinate (the largest over the arrays)."""
    sigmas: tuple[float, ...]
    """Per leaf, the noise along one of its coordinates."""
    scales: list[NDArray[np.float64]]
    steps: list[NDArray[np.float64]]
    """Per leaf, the requested step of every element."""
    raised: int
    relative: float
    """The cost's noise relative to its variation (the largest over the leaves)."""
    direction_sigma: float
    """The noise along a random direction (directional modes; else the coordinates')."""
    noise_measured: bool
    """Whether the noise was measured (or seen in whole quanta), not only bounded."""
    settings: Settings
    evaluations: int


@dataclass(slots=True, kw_only=True)
class _Checked:
    """One parameter's settled evidence."""

    rows: Rows
    judgement: Judgement
    elements: Rows | None = None
    """Directional modes: the coordinates bisection checked."""
    stopped: bool = False
    """Bisection stopped at its limit of wrong elements."""
    ranges: list[tuple[int, int]] | None = None
    """Bisection: ranges [lo, hi) that failed but whose halves did not."""
    miss: float = 0.0
    """Directional modes: the chance that the directions miss an error of the detectable size,
    with the round-off allowance the measured noise forced."""


def run(subject: Subject, options: Options, started: float) -> Report:
    """Estimate, settle and explain; return the Report."""
    scheme = options.scheme
    timer = time.perf_counter()
    second, grads_changed = subject.repeat()
    one_evaluation = time.perf_counter() - timer
    randomness = nondeterministic(subject.base_value, second, grads_changed)
    settings = Settings(method=scheme.name, eps=options.eps, step="", mode=options.mode,
                        samples=options.samples, seed=options.seed,
                        thresholds=options.thresholds)  # fmt: skip
    if randomness is not None and _ruins_check(subject, options, second):
        return _undetermined(subject, settings, [randomness], started, spent={"base": 2})
    lead = [randomness] if randomness else []
    _warn_if_long(options, _planned(subject, options), one_evaluation)
    plan = _plan(subject, options, settings)
    if options.mode in ("directional", "bisect"):
        checked, bulk, follow_up, settings = _directional(subject, options, plan)
    else:
        checked, bulk, follow_up, executor_name, plan = _coordinates(subject, options, plan)
        settings = replace(plan.settings, executor=executor_name)
    last = float(np.real(to_scalar(subject.evaluate(subject.params))))
    spent = {"base": 3 + (1 if scheme.complex_step else 0), "noise": plan.evaluations,
             "estimate": bulk, "follow_up": follow_up}  # fmt: skip
    # Randomness that began after the first two calls shows here: the cost at the given
    # point has moved (by more than a finite difference could shrug off).
    if last != subject.base_value and _ruins_check(subject, options, last):
        late = changed_during(subject.base_value, last, plan.sigma)
        return _undetermined(subject, settings, [*lead, late], started, spent=spent)
    return _report(subject, options, plan, checked, lead, settings, spent, started)


def _plan(subject: Subject, options: Options, settings: Settings) -> _Plan:
    """Measure the cost's noise and choose every element's step."""
    problem = _problem(
        subject, complex_step=options.scheme.complex_step, timeout=options.execution.timeout
    )
    leaves = problem.flat.leaves
    scales = [scale_of(np.asarray(leaf.array).real.reshape(-1)) for leaf in leaves]
    # Seeded coordinates, not the largest analytic ones: those are often a max-pool's maxima,
    # where a tie puts a kink in the table that ECnoise would read as noise.
    noise = measure(leaves, problem.cost, subject.base_value, scales, options.seed)
    along = noise
    if options.mode in ("directional", "bisect"):
        along = measure_along_directions(leaves, problem.cost, subject.base_value, scales,
                                         options.seed)  # fmt: skip
    steps, raised, relatives = [], 0, []
    described: dict[str, list[float]] = {}
    for leaf_index, (leaf, scale) in enumerate(zip(leaves, scales, strict=True)):
        x = np.asarray(leaf.array).real.reshape(-1)
        leaf_sigma = noise.per_leaf[leaf_index] if noise.per_leaf else noise.sigma
        relative = _relative_noise(subject, leaf.offset, leaf.size, scale, leaf_sigma)
        relatives.append(relative)
        if options.scheme.complex_step:
            h = np.full(leaf.size, COMPLEX_STEP if options.eps is None else _complex_eps(options))
        else:
            h, count = initial_steps(x, options.eps, order=options.scheme.order, scale=scale,
                                     noise=relative)  # fmt: skip
            raised += count
        steps.append(h)
        described.setdefault(str(x.dtype), []).append(relative)
    step = _describe(options, described)
    sigmas = noise.per_leaf or (noise.sigma,) * len(leaves)
    return _Plan(problem=problem, sigma=noise.sigma, sigmas=sigmas, scales=scales, steps=steps,
                 raised=raised, noise_measured=noise.measured,
                 relative=max(relatives, default=0.0), settings=replace(settings, step=step),
                 direction_sigma=max(along.sigma, noise.sigma),
                 evaluations=noise.evaluations + (along.evaluations if along is not noise
                                                  else 0))  # fmt: skip


def _describe(options: Options, relatives: dict[str, list[float]]) -> str:
    """The requested steps in words, per dtype.

    "1e-07", or "0.0046*scale" (a range where the parameters' noise levels differ).
    """
    if options.scheme.complex_step:
        return f"{COMPLEX_STEP if options.eps is None else _complex_eps(options):.3g}"
    parts = {}
    for dtype, values in relatives.items():
        texts = sorted({describe(options.eps, options.scheme.order, np.dtype(dtype), v)
                        for v in (min(values), max(values))})  # fmt: skip
        parts[dtype] = (
            texts[0]
            if len(texts) == 1
            else " to ".join([texts[0].removesuffix("*scale"), texts[-1]])
        )
    if len(set(parts.values())) == 1:
        return next(iter(parts.values()))
    return ", ".join(f"{text} ({dtype})" for dtype, text in parts.items())


def _complex_eps(options: Options) -> float:
    return COMPLEX_STEP if options.eps == "auto" else float(options.eps)  # type: ignore[arg-type]


def _relative_noise(
    subject: Subject, offset: int, size: int, scale: NDArray[np.float64], sigma: float
) -> float:
    """The cost's noise relative to its variation over one scale length of this leaf."""
    part = subject.analytic[offset : offset + size]
    part = part[np.isfinite(part)]
    gradient = float(np.sqrt(np.mean(part**2))) if len(part) else 0.0
    length = float(np.sqrt(np.mean(scale**2))) if len(scale) else 1.0
    variation = gradient * length if gradient > 0 else abs(subject.base_value)
    return sigma / variation if variation > 0 else 1.0


def _context(subject: Subject, options: Options, plan: _Plan,
             executor: Executor | None) -> Context:  # fmt: skip
    # The complex step perturbs complex copies, which the user's gradient cannot see.
    recompute = None if options.scheme.complex_step else subject.recompute
    return Context(problem=plan.problem, executor=executor, sigmas=plan.sigmas,
                   direction_sigma=plan.direction_sigma,
                   thresholds=options.thresholds, pinned=_pinned(options) is not None,
                   scales=plan.scales, recompute=recompute, seed=options.seed,
                   gradient_scale=_rms(subject.analytic),
                   noise_measured=plan.noise_measured)  # fmt: skip


def _rms(values: NDArray[np.float64]) -> float:
    finite = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(finite**2))) if len(finite) else 0.0


def _pinned(options: Options) -> float | None:
    eps = options.eps
    return float(eps) if isinstance(eps, float | int) and not isinstance(eps, bool) else None


def _coordinates(
    subject: Subject, options: Options, plan: _Plan
) -> tuple[list[_Checked], int, int, str, _Plan]:
    """Full and sample mode: every chosen coordinate, then settle each parameter.

    Returns the settled parameters, the evaluations of the bulk pass and of the follow-ups,
    and how the evaluations ran.
    """
    problem = plan.problem
    chosen = select_coordinates(problem.flat, options.mode, options.samples, options.seed)
    steps = [h[local] for h, local in zip(plan.steps, chosen, strict=True)]
    planned = sum(len(c) for c in chosen) * options.scheme.evaluations_per_coordinate
    # A batched cost may round differently from the plain one, by about the cost's own noise
    # relative to its value (not to its variation: a wrong term of size h must still show).
    level = max(1.0, abs(float(np.real(problem.base_value))))
    resolution = max(float(np.finfo(np.float64).eps), plan.sigma / level)
    with (
        ProgressBar(planned, enabled=options.execution.progress) as progress,
        executor_for(
            problem, problem.target, subject.evaluate, options, progress, resolution
        ) as executor,  # fmt: skip
    ):
        estimates = estimate(problem, options.scheme, chosen, steps, plan.sigmas, executor)
        if not plan.noise_measured:
            plan, estimates = _remeasure(subject, options, plan, estimates)
        context = _context(subject, options, plan, executor)
        checked, follow_up = [], 0
        for leaf_index, leaf in enumerate(problem.flat.leaves):
            lo, hi = np.searchsorted(estimates.indices, [leaf.offset, leaf.offset + leaf.size])
            part = slice(int(lo), int(hi))
            usable, nonfinite = estimates.usable[part], estimates.nonfinite[part]
            # The cost not moving is a surprise only where the analytic gradient says it should
            # have moved by more than its noise.
            analytic = subject.analytic[estimates.indices[part]]
            expected = np.abs(analytic) * 2 * estimates.steps[part]
            surprise = estimates.flat[part] & (expected > CONFIDENCE * plan.sigmas[leaf_index])
            status = _status(usable, nonfinite, surprise)
            numeric = estimates.values[part]
            error = np.maximum(estimates.noise[part] + estimates.truncation[part],
                               4 * np.finfo(np.float64).eps * np.abs(numeric))  # fmt: skip
            realized = estimates.steps[part]
            leaf_rows = Rows(leaf=leaf, leaf_index=leaf_index,
                             local=estimates.indices[part] - leaf.offset,
                             analytic=subject.analytic[estimates.indices[part]].copy(),
                             numeric=numeric.copy(), error=error,
                             step=np.where(usable, realized, steps[leaf_index]),
                             status=status.astype(np.int8))  # fmt: skip
            outcome = settle(context, leaf_rows)
            follow_up += outcome.evaluations
            checked.append(_Checked(rows=leaf_rows, judgement=outcome.judgement))
    name = "loop"
    if isinstance(executor, BatchedExecutor):
        sizes = sorted(set(executor.choices.values()))
        name = "batched (B=" + "/".join(map(str, sizes)) + ")"
    elif isinstance(executor, PoolExecutor):
        name = f"{executor.workers} workers"
    return checked, estimates.evaluations, follow_up, name, plan


def _remeasure(
    subject: Subject, options: Options, plan: _Plan, estimates: Estimates
) -> tuple[_Plan, Estimates]:
    """Measure the noise again along coordinates the estimates saw move the cost.

    The first measurement may have picked only coordinates the cost does not depend on at
    this point (a max-pool's inputs other than the maximum); then its noise is a bound, and
    a coordinate whose cost never moves says nothing. The bulk estimate shows which move it.
    """
    leaves = plan.problem.flat.leaves
    moved = np.where(np.isfinite(estimates.values), np.abs(estimates.values), 0.0)
    prefer = []
    for leaf in leaves:
        magnitudes = np.zeros(leaf.size)
        inside = (estimates.indices >= leaf.offset) & (estimates.indices < leaf.offset + leaf.size)
        magnitudes[estimates.indices[inside] - leaf.offset] = moved[inside]
        prefer.append(magnitudes)
    if not any(p.max(initial=0.0) > 0 for p in prefer):
        return plan, estimates
    noise = measure(leaves, plan.problem.cost, subject.base_value, plan.scales,
                    options.seed + 1, prefer)  # fmt: skip
    evaluations = plan.evaluations + noise.evaluations
    if not noise.measured or not plan.sigma > 0:
        return replace(plan, evaluations=evaluations), estimates
    # Error bars are proportional to the noise: rescale the bulk estimate's.
    ratio = noise.sigma / plan.sigma
    plan = replace(plan, sigma=noise.sigma, sigmas=noise.per_leaf, noise_measured=True,
                   direction_sigma=noise.sigma, evaluations=evaluations)  # fmt: skip
    return plan, replace(estimates, noise=estimates.noise * ratio)


def _directional(
    subject: Subject, options: Options, plan: _Plan
) -> tuple[list[_Checked], int, int, Settings]:
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
    subject: Subject, options: Options, plan: _Plan
) -> tuple[list[_Checked], int, int, Settings]:
    problem = plan.problem
    tolerance = options.thresholds[1]
    promise = options.directional
    k = promise.directions or directions_for(promise.miss_probability, tolerance,
                                             promise.detectable)  # fmt: skip
    context = _context(subject, options, plan, None)
    checked, bulk, follow_up = [], 0, 0
    worst_miss = 0.0
    for leaf_index, leaf in enumerate(problem.flat.leaves):
        part = subject.analytic[leaf.offset : leaf.offset + leaf.size]
        h = plan.steps[leaf_index]
        if leaf.size == 0:
            continue
        rng = np.random.default_rng([options.seed, leaf_index])
        sigma = context.noise_along(leaf_index, leaf.size)
        measured = project(problem, leaf_index, 0, leaf.size, h, part, sigma, rng, k)
        bulk += 2 * k
        leaf_rows = _direction_rows(leaf_index, leaf, measured, part)
        outcome = settle(context, leaf_rows)
        follow_up += outcome.evaluations
        entry = _Checked(rows=leaf_rows, judgement=outcome.judgement)
        if options.mode == "bisect" and entry.judgement.verdict in (Verdict.SUSPICIOUS,
                                                                     Verdict.BUG):  # fmt: skip
            follow_up += _bisect(subject, options, plan, context, entry)
        entry.miss = _miss(leaf_rows, k, options)
        checked.append(entry)
        worst_miss = max(worst_miss, entry.miss)
    settings = replace(plan.settings, directions=k, detectable=options.directional.detectable,
                       miss_probability=max(worst_miss, miss_probability(
                           k, tolerance, options.directional.detectable)))  # fmt: skip
    return checked, bulk, follow_up, settings


def _status(
    usable: NDArray[np.bool_], nonfinite: NDArray[np.bool_], flat: NDArray[np.bool_]
) -> NDArray[np.int8]:
    """Each estimate's status.

    No step moved it, the cost was not finite, the cost did not move where the analytic
    gradient says it should have, or measured.
    """
    status = np.where(nonfinite, Status.NONFINITE, np.where(flat, Status.FLAT, Status.MEASURED))
    return np.where(usable, status, Status.NO_STEP).astype(np.int8)


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


def _unreached(checked: _Checked, options: Options) -> Finding:
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


def _bisect(subject: Subject, options: Options, plan: _Plan, context: Context,
            entry: _Checked) -> int:  # fmt: skip
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
        sigma = context.noise_along(leaf_index, hi - lo)
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
        status = _status(estimates.usable, estimates.nonfinite, flat)
        rows = Rows(leaf=leaf, leaf_index=leaf_index, local=np.arange(lo, hi),
                    analytic=part[lo:hi].copy(), numeric=estimates.values.copy(),
                    error=estimates.noise.copy(), step=estimates.steps.copy(),
                    status=status.astype(np.int8))  # fmt: skip
        found.append(rows)
        return int(np.count_nonzero(rows.off(options.thresholds[1])))

    bisection = bisect(leaf.size, measure_range, fails, check_range)
    elements = _concatenate(leaf, leaf_index, found)
    if len(elements.local):
        spent += settle(context, elements).evaluations
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


def _report(
    subject: Subject,
    options: Options,
    plan: _Plan,
    checked: list[_Checked],
    lead: list[Finding],
    settings: Settings,
    spent: dict[str, int],
    started: float,
) -> Report:
    circumstances = Circumstances(
        thresholds=options.thresholds, worst=options.worst, hints=options.hints,
        sigma=plan.sigma, eps=_pinned(options),
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
            found.append(_unreached(c, options))
        mistakes.append((report, found))
    mistakes.sort(key=lambda pair: (pair[0].verdict.rank, pair[0].difference), reverse=True)
    findings = lead + [f for _, found in mistakes for f in found]
    bars = {p.name: p.error_bar for p in params}
    leaves = [c.rows.leaf for c in checked]
    note = precision(leaves, plan.sigma, plan.relative, settings.step, bars)
    if note is not None:
        findings.append(note)
    if plan.raised:
        findings.append(raised_steps(plan.raised, _pinned(options)))
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


def _suggested(rows: Rows, plan: _Plan) -> float:
    """The central-difference step the measured noise calls for, for one parameter."""
    scale = float(np.median(plan.scales[rows.leaf_index])) if rows.leaf.size else 1.0
    gradient = rows.gradient_scale() or 1.0
    return float(scale * min(3 * plan.sigma / (gradient * scale), 1.0) ** (1 / 3))


def _planned(subject: Subject, options: Options) -> int:
    """Cost evaluations the bulk pass of a full or sampled check will take."""
    if options.mode not in ("full", "sample"):
        return 0
    chosen = select_coordinates(subject.flat, options.mode, options.samples, options.seed)
    return sum(len(c) for c in chosen) * options.scheme.evaluations_per_coordinate


def _warn_if_long(options: Options, planned: int, one_evaluation: float) -> None:
    """Before a full check of over a million evaluations, say how long it will take."""
    if options.mode != "full" or planned < LONG_CHECK:
        return
    workers = options.execution.workers or 1
    seconds = planned * one_evaluation / workers
    warnings.warn(
        f"a full check is {planned:,} cost evaluations: about {_duration(seconds)} at "
        f"{one_evaluation * 1e3:.2g} ms each. mode='directional' detects a wrong tensor in a "
        "few dozen evaluations, mode='bisect' also finds the wrong elements, and "
        "mode='sample' checks a seeded sample of each tensor.",
        GradcheckWarning,
        stacklevel=_outside_gradcheck(),
    )


def _outside_gradcheck() -> int:
    """The warnings stacklevel of the first caller outside this package (the user's line)."""
    frame: Any = sys._getframe(1)
    level = 1
    package = __name__.rpartition(".")[0]
    while frame is not None and frame.f_globals.get("__name__", "").startswith(package):
        frame, level = frame.f_back, level + 1
    return level


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
    pinned = _pinned(options)
    step = 1e-7 if pinned is None else pinned
    induced = math.sqrt(subject.flat.size) * gap / (2 * step)
    norm = float(stable_norm(subject.analytic[np.isfinite(subject.analytic)]))
    return induced >= options.thresholds[0] * norm


def _undetermined(subject: Subject, settings: Settings, findings: list[Finding],
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


def _problem(subject: Subject, *, complex_step: bool, timeout: float | None = None) -> Problem:
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
        value: float | complex = to_scalar(evaluate(target), complex_ok=complex_step)
        return value

    if timeout is not None:
        cost = limited(cost, timeout)
    return Problem(cost=cost, flat=flat, base_value=subject.base_value, target=target)


__all__ = ["LONG_CHECK", "Subject", "run"]
