"""The Report: everything a check found, as data; renderers live beside it and only read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._compare import ElementError, ParamReport, Verdict
from .._diagnose import Finding

if TYPE_CHECKING:
    import os

    from rich.console import Console, ConsoleOptions, RenderResult

__all__ = ["ElementError", "Finding", "ParamReport", "Report", "Settings", "Verdict"]


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
        from ._json import report_to_dict

        return report_to_dict(self)

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = 2) -> str:
        """Return the report as JSON, and write it to ``path`` if given."""
        from ._json import report_to_json

        return report_to_json(self, path, indent=indent)

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """Return the report as one self-contained HTML page, and write it to ``path`` if given.

        The page opens without a network: table, findings and plots are inline.
        Needs the ``html`` extra (``pip install 'gradcheck[html]'``); without it,
        raises `gradcheck.MissingExtraError`.
        """
        from ._html import render_html

        return render_html(self, path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Rebuild a Report from `to_dict` output (for tools that read saved reports)."""
        from ._json import report_from_dict

        return report_from_dict(data)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from ._terminal import render

        yield render(self)

    def __str__(self) -> str:
        from ._terminal import render_text

        return render_text(self)
