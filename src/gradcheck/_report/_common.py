"""What the renderers share: the `Renderer` protocol, the verdict headlines, number formats."""

from __future__ import annotations

import math
from typing import Protocol

from .._results import Report, Verdict


class Renderer(Protocol):
    """Turns a `Report` into text in one format; reads the report and nothing else."""

    def __call__(self, report: Report) -> str:
        """Return the report rendered."""
        ...


HEADLINE = {
    Verdict.CORRECT: "Backpropagation is correct.",
    Verdict.ACCEPTABLE: "Backpropagation is correct, within round-off.",
    Verdict.SUSPICIOUS: "Backpropagation is mostly correct, but worth inspecting.",
    Verdict.INCONCLUSIVE: "No verdict: the evidence could not settle it (see the findings).",
    Verdict.BUG: "There is a bug in backpropagation.",
}

"""One sentence per verdict, the same in every format."""


def shape_text(shape: tuple[int, ...]) -> str:
    """``(3,)``, ``(20, 2)``, ``()``: a shape as Python prints a tuple."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def number(value: float) -> str:
    """A difference in two significant digits: ``8.2e-01``; ``0``; ``nan``."""
    if math.isnan(value):
        return "nan"
    return "0" if value == 0 else f"{value:.1e}"


def seconds(value: float) -> str:
    """``312 ms`` below a second, ``2.41 s`` above."""
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def step_text(step: str) -> str:
    """`` · step=1e-07``; nothing where no step was chosen (a check stopped before it)."""
    return f" · step={step}" if step else ""
