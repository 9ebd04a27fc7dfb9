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
from dataclasses import replace
from typing import Any

import numpy as np

from .._diagnose import changed_during, nondeterministic
from .._errors import GradcheckWarning
from .._norms import stable_norm
from .._options import Options
from .._results import Report, Settings
from .._scalar import to_scalar
from ._coordinates import check_coordinates, planned_evaluations
from ._directional import check_directions
from ._plan import pinned, plan_check
from ._report import build_report, undetermined
from ._subject import Subject

LONG_CHECK = 2_000_000
"""Planned evaluations above which a full check warns with its estimated duration."""


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
        return undetermined(subject, settings, [randomness], started, spent={"base": 2})
    lead = [randomness] if randomness else []
    _warn_if_long(options, planned_evaluations(subject, options), one_evaluation)
    plan = plan_check(subject, options, settings)
    if options.mode in ("directional", "bisect"):
        checked, bulk, follow_up, settings = check_directions(subject, options, plan)
    else:
        checked, bulk, follow_up, executor_name, plan = check_coordinates(subject, options, plan)
        settings = replace(plan.settings, executor=executor_name)
    last = float(np.real(to_scalar(subject.evaluate(subject.params))))
    spent = {"base": 3 + (1 if scheme.complex_step else 0), "noise": plan.evaluations,
             "estimate": bulk, "follow_up": follow_up}  # fmt: skip
    # Randomness that began after the first two calls shows here: the cost at the given
    # point has moved (by more than a finite difference could shrug off).
    if last != subject.base_value and _ruins_check(subject, options, last):
        late = changed_during(subject.base_value, last, plan.sigma)
        return undetermined(subject, settings, [*lead, late], started, spent=spent)
    return build_report(subject, options, plan, checked, lead, settings, spent, started)


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
    package = __name__.partition(".")[0]
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
    pinned_step = pinned(options)
    step = 1e-7 if pinned_step is None else pinned_step
    induced = math.sqrt(subject.flat.size) * gap / (2 * step)
    norm = float(stable_norm(subject.analytic[np.isfinite(subject.analytic)]))
    return induced >= options.thresholds[0] * norm
