"""Notebook rendering of a Report: ``Report._repr_html_`` and ``_repr_pretty_``.

One self-contained HTML fragment, readable without a script (a notebook may be untrusted):
the verdict banner, the parameter table (failing first), the findings, and each failing
parameter's small plots (the SVGs of the HTML report). It draws its own light card with
explicit colours, so it reads the same in a light or a dark notebook theme, and every piece
of user text (names, messages, settings) is escaped as in the HTML report. Needs no jinja2.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

from .._results import Finding, ParamReport, Report, Verdict
from ._common import HEADLINE, number, seconds, shape_text, step_text
from ._html import _Budget, _figures

PLOTTED = 3
"""Failing parameters whose plots are drawn (the rest are in the table and findings)."""
_BUDGET = _Budget(points=600, side=64)

_TONE = {
    Verdict.CORRECT: ("#1a7f37", "#edf7ef"),
    Verdict.ACCEPTABLE: ("#2f7d6d", "#edf6f4"),
    Verdict.SUSPICIOUS: ("#9a6700", "#fff8e6"),
    Verdict.INCONCLUSIVE: ("#8250df", "#f6f1ff"),
    Verdict.BUG: ("#cf222e", "#ffeff0"),
}

_STYLE = """
.gradcheck-nb { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bug: #cf222e;
  background: #ffffff; color: var(--ink); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 14px; font: 13px/1.45 system-ui, "Liberation Sans", "DejaVu Sans", sans-serif;
  max-width: 1100px; }
.gradcheck-nb .banner { padding: 8px 12px; border-radius: 6px; margin-bottom: 8px; }
.gradcheck-nb .word { font-weight: 700; font-size: 18px; text-transform: uppercase; }
.gradcheck-nb .settings { color: var(--muted); font-size: 12px; margin: 2px 0 8px; }
.gradcheck-nb table { border-collapse: collapse; margin: 4px 0 8px; }
.gradcheck-nb th, .gradcheck-nb td { padding: 3px 9px; border-bottom: 1px solid var(--line);
  text-align: right; white-space: nowrap; color: var(--ink); background: transparent; }
.gradcheck-nb th { background: #f6f8fa; font-weight: 600; }
.gradcheck-nb td.name, .gradcheck-nb th.name { text-align: left;
  font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.gradcheck-nb .badge { color: #ffffff; border-radius: 9px; padding: 0 7px; font-size: 12px; }
.gradcheck-nb ul { margin: 4px 0 8px; padding-left: 18px; }
.gradcheck-nb li { margin: 3px 0; }
.gradcheck-nb .kind { font-family: ui-monospace, "DejaVu Sans Mono", monospace; color: #0550ae; }
.gradcheck-nb .plots { display: flex; flex-wrap: wrap; gap: 10px; }
.gradcheck-nb figure { margin: 0; width: 260px; padding: 6px 8px; border: 1px solid var(--line);
  border-radius: 6px; background: #ffffff; }
.gradcheck-nb figure .title { font-weight: 600; font-size: 12px; }
.gradcheck-nb figure svg { display: block; max-width: 100%; height: auto; }
.gradcheck-nb h4 { margin: 10px 0 4px; font-size: 13px; color: var(--ink); }
"""


def render_notebook(report: Report) -> str:
    """The report as one HTML fragment for a notebook cell's rich output."""
    parts = [f'<div class="gradcheck-nb"><style>{_STYLE}{_chart_css()}</style>',
             _banner(report), _table(report), _findings(report.findings)]  # fmt: skip
    by_param: dict[str | None, list[Finding]] = {}
    for finding in report.findings:
        by_param.setdefault(finding.param, []).append(finding)
    for param in report.failing[:PLOTTED]:
        parts.append(_plots(param, by_param.get(param.name, []), report))
    parts.append("</div>")
    return "".join(parts)


def pretty(report: Report, printer: Any, cycle: bool) -> None:
    """IPython's ``_repr_pretty_``: the terminal rendering, as ``print(report)`` shows it."""
    printer.text("Report(...)" if cycle else str(report).rstrip("\n"))


def _banner(report: Report) -> str:
    verdict = report.verdict if report.checked else Verdict.INCONCLUSIVE
    tone, wash = _TONE[verdict]
    headline = HEADLINE[verdict] if report.checked else "Cannot verify the gradients."
    if report.checked and not report.worst.passed:
        headline += f" Worst parameter: {report.worst.name}."
    s = report.settings
    settings = (
        f"method={s.method}{step_text(s.step)} · mode={s.mode} · seed={s.seed} · "
        f"{report.evaluations:,} evaluations in {seconds(report.elapsed)}"
    )
    return (
        f'<div class="banner" style="border-left: 6px solid {tone}; background: {wash};">'
        f'<span class="word" style="color: {tone};">{_e(verdict.value)}</span> '
        f"overall difference {_e(number(report.difference))}. {_e(headline)}</div>"
        f'<div class="settings">{_e(settings)}</div>'
    )


def _table(report: Report) -> str:
    head = ("parameter", "shape", "difference", "verdict", "off", "worst at", "analytic",
            "numeric")  # fmt: skip
    rows = [
        "<tr>" + "".join(f'<th class="{"name" if h == "parameter" else ""}">{h}</th>'
                         for h in head) + "</tr>"
    ]  # fmt: skip
    failing = report.failing
    for p in failing + [p for p in report.params.values() if p not in failing]:
        rows.append(_row(p))
    return "<table>" + "".join(rows) + "</table>"


def _row(p: ParamReport) -> str:
    tone, _ = _TONE[p.verdict]
    worst = p.worst[0] if p.worst else None
    where = "[" + ", ".join(map(str, worst.index)) + "]" if worst else ""
    cells = [
        f'<td class="name">{_e(p.name)}</td>',
        f"<td>{_e(shape_text(p.shape))}</td>",
        f"<td>{_e(number(p.difference))}</td>",
        f'<td><span class="badge" style="background: {tone};">{_e(p.verdict.value)}</span></td>',
        f"<td>{p.mismatches:,}/{p.checked:,}</td>" if p.mismatches else "<td>0</td>",
        f"<td>{_e(where)}</td>",
        f"<td>{worst.analytic:.5e}</td>" if worst else "<td></td>",
        f"<td>{worst.numeric:.5e}</td>" if worst else "<td></td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _findings(findings: list[Finding]) -> str:
    if not findings:
        return ""
    items = []
    for f in findings:
        where = f"<b>{_e(f.param)}</b>: " if f.param else ""
        items.append(f'<li><span class="kind">[{_e(f.kind)}]</span> {where}{_e(f.message)}</li>')
    return "<ul>" + "".join(items) + "</ul>"


def _plots(param: ParamReport, findings: list[Finding], report: Report) -> str:
    uid = "nb-" + format(abs(hash((id(report), param.name))), "x")
    plots, notes = _figures(param, findings, report, _BUDGET, uid)
    figures = "".join(
        f'<figure><div class="title">{_e(q.title)}</div>{q.svg}</figure>'
        for q in plots
        if q.kind != "histogram"
    )
    text = "".join(f"<p>{_e(note)}</p>" for note in notes)
    return f'<h4>{_e(param.name)}</h4>{text}<div class="plots">{figures}</div>'


def _chart_css() -> str:
    """The HTML report's chart rules, scoped to the notebook card."""
    css = (resources.files(__package__) / "templates" / "report.css").read_text(encoding="utf-8")
    start = css.index("/* --- charts")
    end = css.index("footer", start)
    rules = css[start:end].replace(".chart", ".gradcheck-nb .chart")
    return rules


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
