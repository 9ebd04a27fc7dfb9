"""Full and sample mode: estimate every chosen coordinate, then settle each parameter.

The bulk pass runs through the executor the options ask for (loop, batched cost, pool),
behind a progress bar; each parameter's rows then get their error bars and are settled
on evidence (`_diagnose.settle`) with the same executor.
"""

from __future__ import annotations

import numpy as np

from .._compare import CONFIDENCE
from .._diagnose import Rows, settle
from .._engine import BatchedExecutor, PoolExecutor, estimate, select_coordinates
from .._evaluation import executor_for
from .._options import Options
from .._progress import ProgressBar
from ._checked import Checked, estimate_status
from ._plan import Plan, context, remeasure
from ._subject import Subject


def check_coordinates(
    subject: Subject, options: Options, plan: Plan
) -> tuple[list[Checked], int, int, str, Plan]:
    """Full and sample mode: every chosen coordinate, then settle each parameter.

    Returns the settled parameters, the evaluations of the bulk pass and of the follow-ups,
    how the evaluations ran, and the plan (with the noise measured again where needed).
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
            plan, estimates = remeasure(subject, options, plan, estimates)
        settling = context(subject, options, plan, executor)
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
            codes = estimate_status(usable, nonfinite, surprise)
            numeric = estimates.values[part]
            error = np.maximum(estimates.noise[part] + estimates.truncation[part],
                               4 * np.finfo(np.float64).eps * np.abs(numeric))  # fmt: skip
            realized = estimates.steps[part]
            leaf_rows = Rows(leaf=leaf, leaf_index=leaf_index,
                             local=estimates.indices[part] - leaf.offset,
                             analytic=subject.analytic[estimates.indices[part]].copy(),
                             numeric=numeric.copy(), error=error,
                             step=np.where(usable, realized, steps[leaf_index]),
                             status=codes.astype(np.int8))  # fmt: skip
            outcome = settle(settling, leaf_rows)
            follow_up += outcome.evaluations
            checked.append(Checked(rows=leaf_rows, judgement=outcome.judgement))
    name = "loop"
    if isinstance(executor, BatchedExecutor):
        sizes = sorted(set(executor.choices.values()))
        name = "batched (B=" + "/".join(map(str, sizes)) + ")"
    elif isinstance(executor, PoolExecutor):
        name = executor.name
    return checked, estimates.evaluations, follow_up, name, plan


def planned_evaluations(subject: Subject, options: Options) -> int:
    """Cost evaluations the bulk pass of a full or sampled check will take."""
    if options.mode not in ("full", "sample"):
        return 0
    chosen = select_coordinates(subject.flat, options.mode, options.samples, options.seed)
    return sum(len(c) for c in chosen) * options.scheme.evaluations_per_coordinate
