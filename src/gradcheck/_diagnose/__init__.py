"""Diagnosis: settle each parameter's verdict on evidence, and say what a mismatch is.

`settle` gathers more evidence where the bulk pass left a verdict open (ladders of steps,
steps chosen for the measured noise, kinks settled off the kink); `param_report` and
`findings_for` turn the settled evidence into the report's rows and sentences: what kind
of mistake (`_mistakes`), or why a mismatch is not one (`_benign`).
"""

from __future__ import annotations

from .._results import Finding
from ._benign import changed_during, nondeterministic, precision
from ._context import Context
from ._directional import unresolved_range
from ._explain import (
    Circumstances,
    Comparison,
    compare,
    findings_for,
    overall_difference,
    param_report,
)
from ._notes import held, raised_steps, reach, whole_arrays
from ._rows import Rows, Status
from ._settle import Outcome, settle

__all__ = [
    "Circumstances",
    "Comparison",
    "Context",
    "Finding",
    "Outcome",
    "Rows",
    "Status",
    "changed_during",
    "compare",
    "findings_for",
    "held",
    "nondeterministic",
    "overall_difference",
    "param_report",
    "precision",
    "raised_steps",
    "reach",
    "settle",
    "unresolved_range",
    "whole_arrays",
]
