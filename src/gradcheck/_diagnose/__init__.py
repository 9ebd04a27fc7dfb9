"""Diagnosis: turn a comparison into findings that say what a mismatch is, or why it is none.

`diagnose` runs the detectors in a fixed order and returns the findings most
important first. Each detector is a pure function of the numbers computed by the
earlier stages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._compare import Comparison
from .._engine import NumericGradient
from .._tree import FlatParams

KINDS = (
    "scale",
    "sign",
    "transpose",
    "zero",
    "missing_l2",
    "localized",
    "kink",
    "noise",
    "nondeterministic",
    "precision",
    "nonfinite",
)
"""Every kind a Finding can have."""

_LISTED = 5
"""How many coordinates a message spells out before saying "and N more"."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One observation about a check: a likely mistake, or why a mismatch is not one."""

    kind: str
    """One of `KINDS`."""
    param: str | None
    """Name of the parameter it concerns, or None if it concerns the whole check."""
    message: str
    """One sentence for a person: names the parameter and the likely cause."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """The numbers behind the message (JSON-serializable)."""


def diagnose(
    comparison: Comparison,
    numeric: NumericGradient,
    analytic: NDArray[np.float64],
    flat: FlatParams,
) -> list[Finding]:
    """Return the findings for a finished comparison, most important first."""
    findings: list[Finding] = []
    findings += _nonfinite(numeric.nonfinite, "numeric", flat)
    analytic_bad = numeric.indices[~np.isfinite(analytic[numeric.indices])]
    findings += _nonfinite(analytic_bad, "analytic", flat)
    if numeric.raised_steps:
        findings.append(
            Finding(
                kind="precision",
                param=None,
                message=(
                    f"The step vanished below the resolution of the parameters' dtype at "
                    f"{numeric.raised_steps} coordinates and was raised to one unit in the last "
                    'place; pass eps="auto" to choose steps suited to the precision.'
                ),
                detail={"raised_steps": numeric.raised_steps},
            )
        )
    return findings


def _nonfinite(coordinates: NDArray[np.intp], side: str, flat: FlatParams) -> list[Finding]:
    """One finding per parameter listing the coordinates where ``side`` is nan or inf."""
    findings = []
    for leaf in flat.leaves:
        mine = coordinates[(coordinates >= leaf.offset) & (coordinates < leaf.offset + leaf.size)]
        if not len(mine):
            continue
        indices = [leaf.index_of(int(c) - leaf.offset) for c in mine]
        listed = ", ".join(_format_index(leaf.name, i) for i in indices[:_LISTED])
        more = f" and {len(indices) - _LISTED} more" if len(indices) > _LISTED else ""
        if side == "numeric":
            message = (
                f"The cost was nan or inf when perturbing {listed}{more}, so the numeric "
                f"gradient of {leaf.name} is unknown there; the cost may be undefined near "
                "the point (log or sqrt of a value near 0?): try a smaller eps or a "
                "one-sided method."
            )
        else:
            message = (
                f"The analytic gradient of {leaf.name} is nan or inf at {listed}{more}; "
                "look for a division by zero or an overflow in backpropagation."
            )
        findings.append(
            Finding(
                kind="nonfinite",
                param=leaf.name,
                message=message,
                detail={"side": side, "count": len(indices), "indices": [list(i) for i in indices]},
            )
        )
    return findings


def _format_index(name: str, index: Sequence[int]) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if len(index) else name
