"""The plan a check runs with: the cost's measured noise and every element's step.

Decided before the bulk estimate (`plan_check`), and measured again where the estimate
shows the first measurement saw only coordinates the cost does not move along
(`remeasure`). The diagnosis's `Context` is built from the plan (`context`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from .._diagnose import Context
from .._engine import (
    Estimates,
    Executor,
    Problem,
    describe,
    initial_steps,
    measure,
    measure_along_directions,
    scale_of,
)
from .._options import Options
from .._results import Settings
from ._subject import Subject, build_problem

COMPLEX_STEP = 1e-20
"""The complex step's default: no subtraction, so any tiny step is exact."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
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


def plan_check(subject: Subject, options: Options, settings: Settings) -> Plan:
    """Measure the cost's noise and choose every element's step."""
    problem = build_problem(
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
    return Plan(problem=problem, sigma=noise.sigma, sigmas=sigmas, scales=scales, steps=steps,
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


def remeasure(
    subject: Subject, options: Options, plan: Plan, estimates: Estimates
) -> tuple[Plan, Estimates]:
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


def context(subject: Subject, options: Options, plan: Plan,
            executor: Executor | None) -> Context:  # fmt: skip
    """What the diagnosis needs to evaluate the cost again, from the plan."""
    # The complex step perturbs complex copies, which the user's gradient cannot see.
    recompute = None if options.scheme.complex_step else subject.recompute
    return Context(problem=plan.problem, executor=executor, sigmas=plan.sigmas,
                   direction_sigma=plan.direction_sigma,
                   thresholds=options.thresholds, pinned=pinned(options) is not None,
                   scales=plan.scales, recompute=recompute, seed=options.seed,
                   gradient_scale=_rms(subject.analytic),
                   noise_measured=plan.noise_measured)  # fmt: skip


def _rms(values: NDArray[np.float64]) -> float:
    finite = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(finite**2))) if len(finite) else 0.0


def pinned(options: Options) -> float | None:
    """The step the user pinned (a float eps), or None where gradcheck chooses it."""
    eps = options.eps
    return float(eps) if isinstance(eps, float | int) and not isinstance(eps, bool) else None
