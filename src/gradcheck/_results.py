"""The result model: what a check found, as data, in one place.

`Verdict`, `ElementError`, `Elements`, `ParamReport`, `Finding` (with its `FindingKind`),
`Settings` and `Report`. The overall verdict and ``passed`` are derived here, once
(`overall`). Nothing here computes a check or renders one: the pipeline builds these
values, and the renderers in `gradcheck._report` only read them (each `Report` method
that renders imports its renderer on first use).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import os

    from rich.console import Console, ConsoleOptions, RenderResult

DEFAULT_THRESHOLDS = (1e-7, 1e-5, 1e-3)
DEFAULT_WORST = 5


class Verdict(enum.StrEnum):
    """How a parameter (or a whole check) reads against the thresholds (t1, t2, t3).

    ``correct`` < t1 <= ``acceptable`` < t2 <= ``suspicious`` < t3 <= ``bug``; and
    ``inconclusive`` where the evidence could not settle it (never a pass). Severity runs
    correct, acceptable, suspicious, inconclusive, bug.
    """

    CORRECT = "correct"
    ACCEPTABLE = "acceptable"
    SUSPICIOUS = "suspicious"
    INCONCLUSIVE = "inconclusive"
    BUG = "bug"

    @classmethod
    def of(cls, difference: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> Verdict:
        """Read a difference against the thresholds (nan reads as a bug)."""
        correct, acceptable, suspicious = thresholds
        if difference < correct:
            return cls.CORRECT
        if difference < acceptable:
            return cls.ACCEPTABLE
        if difference < suspicious:
            return cls.SUSPICIOUS
        return cls.BUG

    @property
    def rank(self) -> int:
        """0 for correct up to 4 for bug, to find the worst of several verdicts."""
        return list(Verdict).index(self)

    @property
    def passes(self) -> bool:
        """Whether this verdict lets a check pass (correct or acceptable)."""
        return self in (Verdict.CORRECT, Verdict.ACCEPTABLE)


def overall(verdicts: Iterable[Verdict]) -> tuple[Verdict, bool]:
    """The verdict of a whole check, and whether it passed: the worst parameter decides.

    The one place where ``passed`` is derived, so a report can never say "correct" and
    not pass, or pass with an inconclusive parameter.
    """
    listed = list(verdicts)
    if not listed:
        return Verdict.INCONCLUSIVE, False
    worst = max(listed, key=lambda v: v.rank)
    return worst, worst.passes


@dataclass(frozen=True, slots=True, kw_only=True)
class ElementError:
    """One checked element of a parameter: both gradient values and how far apart they are."""

    index: tuple[int, ...]
    """Index into the parameter's shape."""
    coordinate: int
    """Index into theta, the concatenation of all parameters."""
    analytic: float
    numeric: float
    abs_error: float
    """``|analytic - numeric|``."""
    rel_error: float
    """``|analytic - numeric| / (|analytic| + |numeric|)``, 0 when both are 0."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Elements:
    """Every checked element of one parameter, for plots (kept out of JSON: it can be large)."""

    local: NDArray[np.intp]
    """[k] flat (C-order) indices into the parameter."""
    analytic: NDArray[np.float64]
    numeric: NDArray[np.float64]
    excluded: NDArray[np.bool_]
    """[k] verified at a kink (the analytic value lies between the one-sided slopes) and left
    out of the difference."""
    error: NDArray[np.float64] | None = None
    """[k] the error bar of each numeric value (None: not known)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamReport:
    """The comparison for one parameter array."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    size: int
    checked: int
    """How many of its elements were compared (all of them in mode="full")."""
    difference: float
    verdict: Verdict
    passed: bool
    worst: tuple[ElementError, ...]
    """The elements with the largest ``|analytic - numeric|``, worst first."""
    mismatches: int
    """Checked elements off by more than the second threshold, relative to their magnitude
    plus the parameter's typical gradient magnitude (so round-off on near-zero elements
    does not count)."""
    norm_analytic: float
    norm_numeric: float
    nonfinite: int
    """Checked elements whose numeric or analytic value is nan or inf (not in the difference)."""
    excluded: int = 0
    """Checked elements verified at a kink of the cost (the analytic value is a valid
    one-sided slope), left out of the difference."""
    error_bar: float = math.nan
    """The difference that finite-difference error alone (round-off and truncation) would
    give, from the measured noise of the cost and the steps used; nan where not estimated."""
    directions: int = 0
    """Random directions it was checked along (directional and bisect modes; 0 otherwise)."""
    unresolved: int = 0
    """Checked elements (or directions) with no usable evidence: a step that rounded away, a
    cost that was not finite, a kink the analytic value lies outside of."""
    elements: Elements | None = field(default=None, repr=False, compare=False)
    """All checked elements' values (None for a report read back from JSON)."""

    def __repr__(self) -> str:
        return (
            f"ParamReport({self.name!r}, shape={self.shape}, verdict={self.verdict.value}, "
            f"difference={self.difference:.2g}, off={self.mismatches}/{self.checked})"
        )


class FindingKind(enum.StrEnum):
    """Every kind a `Finding` can have, most important first.

    A StrEnum: ``finding.kind == "scale"`` holds, and JSON holds the plain string.
    """

    NONDETERMINISTIC = "nondeterministic"
    SCALE = "scale"
    SIGN = "sign"
    TRANSPOSE = "transpose"
    ZERO = "zero"
    MISSING_L2 = "missing_l2"
    LOCALIZED = "localized"
    INCONCLUSIVE = "inconclusive"
    NONFINITE = "nonfinite"
    KINK = "kink"
    NOISE = "noise"
    UNUSED = "unused"
    SKIPPED = "skipped"
    SAMPLED = "sampled"
    PRECISION = "precision"


class Convergence(TypedDict):
    """``detail["convergence"]`` of a mistake confirmed on a ladder of steps."""

    index: list[int]
    steps: list[float]
    errors: list[float]
    order: float
    refined: float


class MistakeDetail(TypedDict, total=False):
    """The keys of ``Finding.detail`` that renderers read.

    ``factor``: scale and sign findings (analytic = factor x numeric); ``convergence``: a
    mistake confirmed on a ladder of steps. Other keys are the numbers behind the message,
    for JSON readers.
    """

    factor: float
    convergence: Convergence


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One observation about a check: a likely mistake, or why a mismatch is not one."""

    kind: FindingKind
    """What it is; a plain string is accepted and checked against `FindingKind`."""
    param: str | None
    """Name of the parameter it concerns, or None if it concerns the whole check."""
    message: str
    """One sentence for a person: names the parameter and the likely cause."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """The numbers behind the message (JSON-serializable); see `MistakeDetail`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FindingKind(self.kind))

    def __repr__(self) -> str:
        message = self.message if len(self.message) <= 72 else self.message[:69] + "..."
        return f"Finding({self.kind.value}, param={self.param!r}, {message!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The options a check ran with, printed in every report so a result can be reproduced."""

    method: str
    eps: float | str | None
    """As requested: None (the default for the dtype), "auto", or a float."""
    step: str
    """The step actually used, in words, e.g. ``"1e-07"`` or ``"6.1e-06 * max(1, |x|)"``."""
    mode: str
    samples: int | float | None
    seed: int
    thresholds: tuple[float, float, float]
    directions: int | None = None
    """Random directions per tensor (directional and bisect modes)."""
    miss_probability: float | None = None
    """The stated chance that those directions all miss an error of `detectable` size."""
    detectable: float | None = None
    """Relative error size ||e|| / ||g|| of a tensor that the miss probability is stated for."""
    executor: str = "loop"
    """How the evaluations ran: "loop", "batched (B=...)", "2 workers", ..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The result of a gradient check.

    ``difference`` and ``verdict`` are over everything checked; ``passed`` also
    requires every parameter on its own to be correct or acceptable, and every
    checked value to be finite.
    """

    difference: float
    verdict: Verdict
    passed: bool
    params: Mapping[str, ParamReport]
    """Per-parameter results, in the order of the user's parameters."""
    findings: list[Finding]
    """What the mismatches look like (or why they are not mistakes), most important first."""
    evaluations: int
    """How many times the cost was evaluated, the base point included."""
    settings: Settings
    size: int
    """Number of coordinates in theta (all parameters)."""
    checked: int
    """Number of coordinates compared."""
    elapsed: float
    """Seconds the check took."""
    spent: Mapping[str, int] = field(default_factory=dict)
    """Where the evaluations went: "base" (the given point: twice at the start, once at the
    end), "noise" (measuring the cost's noise), "estimate" (the bulk pass: 2 per coordinate,
    or 2 per direction), "follow_up" (ladders of steps, re-estimates, bisection)."""

    @property
    def worst(self) -> ParamReport:
        """The parameter with the worst verdict, the largest difference among equals."""
        return max(self.params.values(), key=lambda p: (not p.passed, p.verdict.rank, p.difference))

    @property
    def failing(self) -> list[ParamReport]:
        """Parameters that did not pass, worst first."""
        bad = [p for p in self.params.values() if not p.passed]
        return sorted(bad, key=lambda p: (p.verdict.rank, p.difference), reverse=True)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict (non-finite floats become None)."""
        from ._report import report_to_dict

        return report_to_dict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = 2) -> str:
        """Return the report as JSON, and write it to ``path`` if given."""
        from ._report import report_to_json

        return report_to_json(self, path, indent=indent)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the report as one self-contained HTML page, and write it to ``path`` if given.

        The page opens without a network: table, findings and plots are inline.
        Needs the ``html`` extra (``pip install 'gradcheck[html]'``); without it,
        raises `gradcheck.MissingExtraError`.
        """
        from ._report import render_html

        return render_html(self, path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Rebuild a Report from `to_dict` output (for tools that read saved reports)."""
        from ._report import report_from_dict

        return report_from_dict(data)

    def _repr_html_(self) -> str:
        """The notebook rendering: banner, table (failing first), findings, failing plots."""
        from ._report import render_notebook

        return render_notebook(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's terminal display: the same text as ``print(report)``."""
        from ._report import pretty

        pretty(self, printer, cycle)

    def __repr__(self) -> str:
        failing = len(self.failing)
        return (
            f"<Report {self.verdict.value}: difference {self.difference:.2g}, "
            f"{len(self.params)} parameter{'s' if len(self.params) != 1 else ''}, "
            f"{failing} failing, {self.evaluations:,} evaluations>"
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from ._report import render

        yield render(self)

    def __str__(self) -> str:
        from ._report import render_text

        return render_text(self)
