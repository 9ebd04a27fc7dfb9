"""HTML rendering of a Report: one self-contained page with the table, findings and plots.

The page needs no network: CSS, the table-sorting script and every plot are inline,
and a Content-Security-Policy allows nothing else (no fetch, and no script but ours,
pinned by its hash), so a saved report opens anywhere and a hostile parameter name
could not run code even if it slipped past the escaping. jinja2 (the ``html`` extra)
is imported only when a page is rendered; the template, CSS and script are real
files under ``templates/``, as coverage.py keeps its ``htmlfiles/``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import MissingExtraError
from .._results import Finding, ParamReport, Report, Verdict
from .._text import count
from .._version import __version__
from ._common import HEADLINE, number, seconds, shape_text
from ._files import write_atomically
from ._heatmap import HEATMAP_SIDE, heatmap
from ._plots import SCATTER_LIMIT, Plot, convergence, histogram, scatter
from ._svg import exponent_text

if TYPE_CHECKING:
    import jinja2

_MSG_NO_JINJA = "HTML reports need jinja2: pip install 'gradcheck[html]'"
_MSG_NO_ELEMENTS = (
    "No element plots: this report was read back from JSON, which keeps only the worst "
    "elements. Render the report of a fresh check to see the scatter, heatmap and histogram."
)
POINT_BUDGET = 40_000
"""Scatter points for the whole page, shared among the parameters (300 to 2,000 each)."""
PIXEL_BUDGET = 20 * HEATMAP_SIDE**2
"""Heatmap pixels for the whole page, shared among the heatmaps (48 to 180 per side).

With both budgets a page stays near 1 MB for a hundred tensors however large they are,
and a single 1000 x 1000 tensor gives well under 100 kB."""


def render_html(report: Report, path: str | os.PathLike[str] | None = None) -> str:
    """Render ``report`` as one self-contained HTML page; with ``path``, also write it.

    The file is written atomically (a temporary file, then `os.replace`), so a
    crash never leaves a half-written report where the old one was.

    Raises:
        MissingExtraError: jinja2 is not installed.
    """
    template = _environment().get_template("report.html.j2")  # first: raises without jinja2
    from markupsafe import Markup  # a jinja2 dependency

    script = _asset("report.js")
    page = template.render(
        report=_context(report),
        # Our own files, inserted verbatim: escaping would break CSS quotes and the hash.
        css=Markup(_asset("report.css")),
        script=Markup(script),
        script_hash=base64.b64encode(hashlib.sha256(script.encode()).digest()).decode(),
        version=__version__,
    )
    if path is not None:
        write_atomically(page, path)
    return page


@functools.cache
def _environment() -> jinja2.Environment:
    try:
        import jinja2
    except ImportError as exc:
        raise MissingExtraError(_MSG_NO_JINJA) from exc
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gradcheck._report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _asset(name: str) -> str:
    return (resources.files(__package__) / "templates" / name).read_text(encoding="utf-8")


# --- the template's data: plain values, escaped by jinja2; SVG marked safe -------------------


def _context(report: Report) -> dict[str, Any]:
    anchors = {name: f"param-{i}" for i, name in enumerate(report.params)}
    order = _failing_first(report)
    maps = sum(len(p.shape) >= 2 and p.size > 1 for p in report.params.values())
    budget = _Budget(
        points=max(300, min(SCATTER_LIMIT, POINT_BUDGET // max(len(report.params), 1))),
        side=max(48, min(HEATMAP_SIDE, math.isqrt(PIXEL_BUDGET // max(maps, 1)))),
    )
    by_param: dict[str | None, list[Finding]] = {}
    for finding in report.findings:
        by_param.setdefault(finding.param, []).append(finding)
    return {
        "banner": _banner(report),
        "sampled": report.checked < report.size,
        "rows": [_row(p, anchors[p.name]) for p in order],
        "findings": [
            {
                "kind": f.kind,
                "param": f.param,
                "anchor": anchors.get(f.param) if f.param is not None else None,
                "message": f.message,
            }
            for f in report.findings
        ],
        "sections": [
            _section(p, anchors[p.name], by_param.get(p.name, []), report, budget) for p in order
        ],
    }


@dataclass(frozen=True, slots=True)
class _Budget:
    """How much each parameter's plots may draw, so the page size has a bound."""

    points: int
    """Most scatter points."""
    side: int
    """Most heatmap pixels per side."""


def _failing_first(report: Report) -> list[ParamReport]:
    failing = report.failing
    return failing + [p for p in report.params.values() if p not in failing]


def _banner(report: Report) -> dict[str, Any]:
    s = report.settings
    verdict = report.verdict
    if report.checked == 0:
        headline = "Cannot verify the gradients: nothing was compared; see the findings."
        worst_verdict = Verdict.INCONCLUSIVE
    else:
        worst_verdict = verdict
        headline = HEADLINE[worst_verdict]
        if not report.worst.passed:
            headline += f" Worst parameter: {report.worst.name}."
    mode = s.mode
    if s.directions:
        mode += f" ({count(s.directions, 'direction')} per tensor)"
    elif report.checked < report.size:
        mode += f" ({report.checked:,} of {report.size:,})"
    return {
        "verdict": verdict.value,
        "tone": worst_verdict.value,
        "passed": report.passed,
        "difference": number(report.difference),
        "headline": headline,
        "evaluations": f"{report.evaluations:,}",
        "elapsed": seconds(report.elapsed),
        "checked": f"{report.checked:,}",
        "size": f"{report.size:,}",
        "settings": [
            ("method", s.method),
            ("step", s.step),
            ("mode", mode),
            ("seed", str(s.seed)),
            ("thresholds", " / ".join(exponent_text(t) for t in s.thresholds)),
        ],
    }


def _row(p: ParamReport, anchor: str) -> dict[str, Any]:
    worst = p.worst[0] if p.worst else None
    return {
        "anchor": anchor,
        "name": p.name,
        "shape": shape_text(p.shape),
        "size": p.size,
        "checked": f"{p.checked:,}",
        "checked_sort": p.checked,
        "difference": number(p.difference),
        "difference_sort": "" if math.isnan(p.difference) else repr(p.difference),
        "verdict": p.verdict.value,
        "verdict_sort": p.verdict.rank + (0 if p.passed else 10),
        "off": f"{p.mismatches:,}/{p.checked:,}" if p.mismatches else "0",
        "off_sort": p.mismatches,
        "worst_at": _index(worst.index) if worst else "",
        "analytic": f"{worst.analytic:.5e}" if worst else "",
        "numeric": f"{worst.numeric:.5e}" if worst else "",
        "passed": p.passed,
    }


def _section(
    p: ParamReport, anchor: str, findings: Sequence[Finding], report: Report, budget: _Budget
) -> dict[str, Any]:
    from markupsafe import Markup

    plots, notes = _figures(p, findings, report, budget, anchor)
    return {
        "anchor": anchor,
        "name": p.name,
        "shape": shape_text(p.shape),
        "dtype": p.dtype,
        "verdict": p.verdict.value,
        "passed": p.passed,
        "difference": number(p.difference),
        "checked": f"{p.checked:,}",
        "size": f"{p.size:,}",
        "findings": [{"kind": f.kind, "message": f.message} for f in findings],
        "plots": [
            {"kind": q.kind, "title": q.title, "svg": Markup(q.svg), "caption": q.caption}
            for q in plots
        ],
        "notes": notes,
        "worst": [
            {
                "index": _index(e.index),
                "analytic": f"{e.analytic:.6e}",
                "numeric": f"{e.numeric:.6e}",
                "abs_error": f"{e.abs_error:.2e}",
                "rel_error": f"{e.rel_error:.2e}",
            }
            for e in p.worst
        ],
    }


def _figures(
    p: ParamReport, findings: Sequence[Finding], report: Report, budget: _Budget, uid: str
) -> tuple[list[Plot], list[str]]:
    """The parameter's plots, and notes on the plots it cannot have."""
    plots: list[Plot] = []
    notes: list[str] = []
    elements = p.elements
    thresholds = report.settings.thresholds
    if elements is None:
        notes.append(_MSG_NO_ELEMENTS)
    elif len(elements.local) == 0:
        notes.append(
            f"Checked along {p.directions} random directions, not element by element: "
            "there are no element values to plot."
            if p.directions
            else "No element of this parameter was checked, so there is nothing to plot."
        )
    else:

        def name_of(k: int) -> str:
            index = np.unravel_index(int(elements.local[k]), p.shape)
            return p.name + _index([int(i) for i in index])

        factors = [v for f in findings if isinstance(v := f.detail.get("factor"), int | float)]
        a, n, kinks = elements.analytic, elements.numeric, elements.excluded
        plots.append(
            scatter(
                a,
                n,
                kinks,
                name_of,
                thresholds,
                limit=budget.points,
                factor=float(factors[0]) if factors else None,
                seed=report.settings.seed,
            )
        )
        if len(p.shape) >= 2 and p.size > 1:
            plots.append(
                heatmap(p.shape, elements.local, a, n, kinks, thresholds, uid=uid, side=budget.side)
            )
        plots.append(histogram(a, n, kinks, thresholds))
    for finding in findings:
        sweep = _sweep(finding.detail)
        if sweep is not None:
            steps, errors, order, index = sweep
            plot = convergence(steps, errors, order, p.name + _index(index))
            if plot is not None:
                plots.append(plot)
    return plots, notes


def _sweep(
    detail: Mapping[str, Any],
) -> tuple[list[float], list[float], float | None, tuple[int, ...]] | None:
    """The step sweep of a finding, if it has one (also when read back from JSON)."""
    data = detail.get("convergence")
    if not isinstance(data, Mapping):
        return None
    steps, errors = data.get("steps"), data.get("errors")
    if not isinstance(steps, list | tuple) or not isinstance(errors, list | tuple):
        return None
    order = data.get("order")
    index = data.get("index")
    return (
        list(steps),
        list(errors),
        float(order) if isinstance(order, int | float) else None,
        tuple(int(i) for i in index) if isinstance(index, list | tuple) else (),
    )


def _index(index: Sequence[int]) -> str:
    return "[" + ", ".join(map(str, index)) + "]"
