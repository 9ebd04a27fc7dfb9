"""Terminal rendering of a Report with rich: one row per parameter, findings, the verdict line."""

from __future__ import annotations

import io

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from .._results import ParamReport, Report, Verdict
from .._text import count
from ._common import HEADLINE, number, seconds, shape_text, step_text

WIDTH = 100
"""Width of the plain-text rendering (``str(report)``)."""

_STYLE = {
    Verdict.CORRECT: "green",
    Verdict.ACCEPTABLE: "green",
    Verdict.SUSPICIOUS: "yellow",
    Verdict.INCONCLUSIVE: "bold magenta",
    Verdict.BUG: "bold red",
}


def render(report: Report) -> RenderableType:
    """Build the rich renderable: settings line, parameter table, findings, verdict line."""
    parts: list[RenderableType] = [Text(_settings_line(report), style="dim"), _table(report)]
    for finding in report.findings:
        where = f"{finding.param}: " if finding.param else ""
        line = Text("  • ", style="dim")
        line.append(f"[{finding.kind}] ", style="cyan")
        line.append(where + finding.message)
        parts.append(line)
    parts.append(_headline(report))
    return Group(*parts)


def render_text(report: Report, width: int = WIDTH) -> str:
    """Render to plain text (no colour), as ``str(report)`` shows it."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                      force_jupyter=False,
                      legacy_windows=False, soft_wrap=False, highlight=False)  # fmt: skip
    console.print(render(report))
    return buffer.getvalue().rstrip() + "\n"


def _settings_line(report: Report) -> str:
    s = report.settings
    mode = s.mode if s.mode != "sample" else f"sample ({report.checked:,} of {report.size:,})"
    if s.directions:
        mode += (
            f" ({count(s.directions, 'direction')} per tensor: an error of {s.detectable:g} of a "
            f"tensor's gradient norm escapes with probability {s.miss_probability:.1g})"
        )
    executor = f" · {s.executor}" if s.executor != "loop" else ""
    return (
        f"gradcheck · method={s.method}{step_text(s.step)} · mode={mode} · seed={s.seed}"
        f"{executor} · {report.evaluations:,} evaluations in {seconds(report.elapsed)}"
    )


def _table(report: Report) -> Table:
    sampled = report.checked < report.size
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("parameter", overflow="fold")
    table.add_column("shape")
    if sampled:
        table.add_column("checked", justify="right")
    table.add_column("difference", justify="right")
    table.add_column("verdict")
    table.add_column("off", justify="right")
    table.add_column("worst at")
    table.add_column("analytic", justify="right")
    table.add_column("numeric", justify="right")
    for param in report.params.values():
        row: list[str | Text] = [Text(param.name), shape_text(param.shape)]
        if sampled:
            row.append(f"{param.checked:,}")
        row += [
            number(param.difference),
            Text(param.verdict.value, style=_STYLE[param.verdict]),
            _off(param),
            *_worst(param),
        ]
        table.add_row(*row)
    return table


def _headline(report: Report) -> Text:
    if report.checked == 0:
        reason = next((f.kind for f in report.findings), "nothing was compared")
        return Text(
            f"Cannot verify the gradients ({reason}): no verdict; see the finding above.",
            style="bold magenta",
        )
    worst = report.worst
    verdict = report.verdict
    unknown = sum(p.nonfinite for p in report.params.values())
    over = " over the finite values" if unknown else ""
    text = Text(f"Overall difference{over} {number(report.difference)}: ", style="bold")
    text.append(verdict.value, style=_STYLE[verdict])
    text.append(". ")
    text.append(HEADLINE[verdict], style=_STYLE[verdict])
    if not worst.verdict.passes:
        off = (
            f", {_count(worst.mismatches, worst.checked)} elements off" if worst.mismatches else ""
        )
        text.append(f" Worst parameter: {worst.name} (difference {number(worst.difference)}{off}).")
    if unknown and verdict.passes:
        text.append(
            f" Not verified at {count(unknown, 'coordinate')} where a value was nan or inf.",
            style="yellow",
        )
    return text


def _worst(param: ParamReport) -> tuple[str, str, str]:
    if not param.worst:
        return "", "", ""
    element = param.worst[0]
    index = f"[{', '.join(map(str, element.index))}]" if element.index else "[]"
    return index, f"{element.analytic:.5e}", f"{element.numeric:.5e}"


def _off(param: ParamReport) -> str:
    return _count(param.mismatches, param.checked) if param.mismatches else "0"


def _count(part: int, whole: int) -> str:
    return f"{part:,}/{whole:,}"
